"""InboxReader on real PULL sockets (inproc): draining from the loop's reader callback, fairness, pause/resume, zmq.Again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from runtime.graph import InputSpec
from runtime.inbox import InboxReader
from runtime.qos import EdgeStats, InputQueue

ENDPOINT = "inproc://inbox-test"


class AgainOnce(zmq.Socket[bytes]):
    """A real PULL socket whose next `recv` raises zmq.Again once, as pyzmq occasionally did after a wake-up."""

    fail_next = False
    failed: asyncio.Event | None = None

    def recv(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail_next:
            self.fail_next = False
            if self.failed is not None:
                self.failed.set()
            raise zmq.Again()
        return super().recv(*args, **kwargs)


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[bytes], AgainOnce]]:
    """A PUSH connected to a PULL over inproc, both with room for everything the tests send."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL, socket_class=AgainOnce)
    push = ctx.socket(zmq.PUSH)
    for s in (pull, push):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 10_000)
        s.setsockopt(zmq.RCVHWM, 10_000)
    pull.bind(ENDPOINT)
    push.connect(ENDPOINT)
    try:
        yield push, pull
    finally:
        push.close()
        pull.close()
        ctx.term()


def send(push: zmq.Socket[bytes], i: int, parts: int = 1) -> None:
    frames = [f"{i}:{k}".encode() for k in range(parts)]
    push.send_multipart(frames, zmq.NOBLOCK)


class Collector:
    """A `handle` that keeps each message's frames as bytes and sets `done` at `expect` messages."""

    def __init__(self, expect: int, then: Callable[[list[bytes]], bool] | None = None) -> None:
        self.got: list[list[bytes]] = []
        self.expect = expect
        self.done = asyncio.Event()
        self.then = then

    def __call__(self, frames: list[Any]) -> bool:
        data = [f.bytes for f in frames]
        self.got.append(data)
        if len(self.got) >= self.expect:
            self.done.set()
        return self.then(data) if self.then else True


async def test_messages_before_and_after_start_arrive_whole_and_in_order(
    pair: tuple[zmq.Socket[bytes], AgainOnce],
) -> None:
    push, pull = pair
    for i in range(3):
        send(push, i, parts=3)  # waiting before the reader exists
    got = Collector(expect=6)
    reader = InboxReader(pull, got, "test inbox")
    reader.start()
    try:
        for i in range(3, 6):
            send(push, i, parts=3)
        await asyncio.wait_for(got.done.wait(), 2.0)
    finally:
        reader.close()
    assert got.got == [[f"{i}:{k}".encode() for k in range(3)] for i in range(6)]


async def test_a_long_backlog_gives_the_loop_a_turn_every_512_messages(
    pair: tuple[zmq.Socket[bytes], AgainOnce],
) -> None:
    push, pull = pair
    n = 1300
    for i in range(n):
        send(push, i)
    trace: list[str] = []
    got = Collector(expect=n, then=lambda _frames: trace.append("m") is None)
    reader = InboxReader(pull, got, "test inbox")
    reader.start()  # its first drain is scheduled before the ticker's first step

    async def ticker() -> None:
        for _ in range(1000):
            if got.done.is_set():
                return
            trace.append("t")
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(asyncio.gather(ticker(), got.done.wait()), 2.0)
    finally:
        reader.close()
    assert trace.count("m") == n
    assert trace.index("t") <= 512  # the other tasks ran before the backlog was through
    assert [int(f[0].split(b":")[0]) for f in got.got] == list(range(n))


async def test_reading_pauses_while_a_backpressure_queue_is_full_and_resumes_with_room(
    pair: tuple[zmq.Socket[bytes], AgainOnce],
) -> None:
    """The worker's pattern: put into the queue; when full, stop reading until the node made room."""
    push, pull = pair
    q = InputQueue(
        InputSpec.model_validate({"from": "a/x", "policy": "backpressure", "queue": 2}), EdgeStats("e")
    )
    resumed: list[asyncio.Task[None]] = []
    paused = asyncio.Event()

    def handle(frames: list[Any]) -> bool:
        q.put_nowait(0, frames[0].bytes)  # raises if the reader ever overfills the queue
        if q.full():
            resumed.append(asyncio.ensure_future(resume_when_space()))
            paused.set()
            return False
        return True

    async def resume_when_space() -> None:
        await q.wait_space()
        reader.resume()

    reader = InboxReader(pull, handle, "bp inbox")
    for i in range(5):
        send(push, i)
    reader.start()
    try:
        await asyncio.wait_for(paused.wait(), 2.0)
        for _ in range(5):  # other wake-ups (the socket's descriptor) find the reader paused
            await asyncio.sleep(0)
        assert reader.paused and len(q) == 2
        assert pull.poll(0) & zmq.POLLIN  # the rest waits in ZeroMQ, unread
        out = []
        async with asyncio.timeout(2.0):
            for _ in range(50):
                while len(q):
                    out.append(q.pop())
                if len(out) == 5:
                    break
                await asyncio.sleep(0)
        assert out == [f"{i}:0".encode() for i in range(5)]
        assert q.stats.dropped == 0
    finally:
        reader.close()
        await asyncio.gather(*resumed, return_exceptions=True)


async def test_a_spurious_zmq_again_neither_kills_nor_stalls_the_reader(
    pair: tuple[zmq.Socket[bytes], AgainOnce], caplog: pytest.LogCaptureFixture
) -> None:
    """The descriptor is edge-triggered: a reader that gave up on zmq.Again with a message still
    waiting would never be woken again (no new edge while the pipe is not empty)."""
    push, pull = pair
    got = Collector(expect=1)
    reader = InboxReader(pull, got, "test inbox")
    reader.start()
    try:
        send(push, 0)
        await asyncio.wait_for(got.done.wait(), 2.0)  # the reader is up and idle
        pull.failed = asyncio.Event()
        pull.fail_next = True
        got.done.clear()
        got.expect = 2
        send(push, 1)  # its wake-up's receive raises zmq.Again, message 1 stays in ZeroMQ
        await asyncio.wait_for(pull.failed.wait(), 2.0)
        await asyncio.wait_for(got.done.wait(), 2.0)  # read without any further arrival
    finally:
        reader.close()
    assert got.got == [[b"0:0"], [b"1:0"]]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_after_close_nothing_is_read_and_a_closed_socket_is_no_error(
    pair: tuple[zmq.Socket[bytes], AgainOnce], caplog: pytest.LogCaptureFixture
) -> None:
    push, pull = pair
    got = Collector(expect=1)
    reader = InboxReader(pull, got, "test inbox")
    reader.start()
    reader.close()
    send(push, 0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert got.got == [] and pull.poll(0) & zmq.POLLIN
    reader.start()  # started again, then its socket closes under a scheduled drain
    pull.close()
    for _ in range(5):
        await asyncio.sleep(0)
    reader.close()
    assert got.got == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
