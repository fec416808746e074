"""Reading a PULL socket straight from the event loop: the receive half of every inter-process edge.

pyzmq's awaitable `recv_multipart` costs a future, a task switch and a raised `zmq.Again` per message;
at 200 Hz on a small core that is a large share of an edge's latency, and at full rate most of its
throughput. An `InboxReader` instead registers the socket's file descriptor with the loop and drains
every waiting message in the reader callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import zmq

__all__ = ["InboxReader"]

log = logging.getLogger("edgeloop.worker")

_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_RCVMORE = int(zmq.RCVMORE)
_BATCH = 512  # messages per callback before the loop gets a turn (fairness with the nodes)


class InboxReader:
    """Drain `sock` in the event loop's reader callback, handing each message's frames to `handle`.

    `handle(frames)` returns False to pause reading (a full backpressure queue: unread messages then
    stay in ZeroMQ, whose high-water mark blocks the sender); `resume()` reads on. The descriptor
    ZeroMQ exposes is edge-triggered, so a callback always drains until the socket reports no input.
    """

    def __init__(self, sock: zmq.Socket[Any], handle: Callable[[list[Any]], bool], name: str) -> None:
        self.sock = sock
        self.handle = handle
        self.name = name
        self.paused = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd = int(self.sock.getsockopt(zmq.FD))
        self._loop.add_reader(self._fd, self._drain)
        self._loop.call_soon(self._drain)  # messages that arrived before the reader existed

    def resume(self) -> None:
        if self.paused and self._loop is not None:
            self.paused = False
            self._loop.call_soon(self._drain)

    def close(self) -> None:
        if self._loop is not None and self._fd >= 0:
            self._loop.remove_reader(self._fd)
        self._loop = None

    def _drain(self) -> None:
        sock = self.sock
        if self.paused or self._loop is None or sock.closed:
            return
        try:
            for _ in range(_BATCH):
                if not int(sock.getsockopt(_EVENTS)) & _POLLIN:
                    return
                frames = [sock.recv(_NOBLOCK, copy=False)]
                while sock.getsockopt(_RCVMORE):
                    frames.append(sock.recv(_NOBLOCK, copy=False))
                if not self.handle(frames):
                    self.paused = True
                    return
        except zmq.Again:
            # EVENTS said input was waiting, yet the receive found none. Look again after the others
            # had a turn (normally EVENTS then says there is nothing): the descriptor is edge-triggered
            # and stays quiet while unread messages remain, so returning here could stall the inbox.
            self._drain_soon()
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ENOTSOCK:
                log.error("%s: receive failed: %s", self.name, exc)
            return
        self._drain_soon()  # more may be waiting: go on after the others had a turn

    def _drain_soon(self) -> None:
        if self._loop is not None:  # `handle` may have closed the reader
            self._loop.call_soon(self._drain)
