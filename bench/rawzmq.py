"""Raw pyzmq + msgpack baselines (no edgeloop): the reference each transport figure is compared against.

The receiver runs in its own process (`python -m bench.rawzmq recv ...`) with the same socket types
edgeloop uses between processes (PUSH → PULL) and an asyncio loop, exactly like an edgeloop worker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import msgpack
import numpy as np
import zmq
import zmq.asyncio

from runtime.clock import WallClock

__all__ = ["recv_main", "send_latency", "send_throughput", "WARMUP"]

WARMUP = 50  # samples dropped at the start of each latency run (SCIENCE.md 1.2 method)
_COPY_THRESHOLD = zmq.COPY_THRESHOLD


def _socket(ctx: zmq.asyncio.Context, kind: int) -> zmq.asyncio.Socket:
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 1000)
    s.setsockopt(zmq.RCVHWM, 1000)
    return s


def frames_for(i: int, payload: np.ndarray | bytes) -> list[Any]:
    t = time.time_ns()
    if isinstance(payload, np.ndarray):
        head = msgpack.packb({"t": t, "s": i, "d": payload.dtype.str, "sh": list(payload.shape)})
        return [head, payload.data if payload.nbytes >= _COPY_THRESHOLD else payload.tobytes()]
    return [msgpack.packb({"t": t, "s": i, "p": payload})]


async def receive(sock: zmq.asyncio.Socket, n: int) -> dict[str, Any]:
    lat: list[int] = []
    t_first = t_last = 0.0
    nbytes = 0
    for k in range(n):
        frames = await sock.recv_multipart(copy=False)
        head = msgpack.unpackb(frames[0].buffer, raw=False)
        if len(frames) > 1:
            arr = np.frombuffer(frames[1].buffer, dtype=head["d"]).reshape(head["sh"])
            nbytes += arr.nbytes
        now = time.time_ns()
        if k == 0:
            t_first = now / 1e9
        t_last = now / 1e9
        if k >= WARMUP:
            lat.append(now - head["t"])
    return {"lat_ns": lat, "t_first": t_first, "t_last": t_last, "bytes": nbytes, "n": n}


async def send_latency(sock: zmq.asyncio.Socket, n: int, rate_hz: float, payload: np.ndarray | bytes) -> None:
    clock = WallClock()
    period = int(1e9 / rate_hz)
    t0 = time.time_ns()
    for i in range(n):
        await clock.sleep_until_ns(t0 + i * period)
        await sock.send_multipart(frames_for(i, payload), copy=False)


async def send_throughput(sock: zmq.asyncio.Socket, n: int, payload: np.ndarray | bytes) -> None:
    for i in range(n):
        await sock.send_multipart(frames_for(i, payload), copy=False)


async def _recv_process(endpoint: str, n: int) -> None:
    ctx = zmq.asyncio.Context()
    sock = _socket(ctx, zmq.PULL)
    sock.bind(endpoint)
    print("ready", flush=True)
    result = await receive(sock, n)
    print(json.dumps(result), flush=True)
    sock.close()
    ctx.term()


def recv_main(argv: list[str]) -> None:
    """`python -m bench.rawzmq recv ENDPOINT N`: receive N messages, print latencies as JSON."""
    asyncio.run(_recv_process(argv[1], int(argv[2])))


if __name__ == "__main__":
    recv_main(sys.argv[1:])
