"""Nodes used only by the record/replay tests, loaded by `module:Class` (workers get this folder on PYTHONPATH)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from runtime.message import Message
from runtime.node import Context, Node, Params

EVENT = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])


def rich_payload(i: int, seed: int = 0) -> dict[str, object]:
    """A payload with every kind of value the codec carries: structured, 2-D, complex, bool, empty arrays."""
    rng = np.random.default_rng(seed * 100_003 + i)
    n = int(rng.integers(0, 40))
    events = np.zeros(n, EVENT)
    events["x"], events["y"] = rng.integers(0, 640, n), rng.integers(0, 480, n)
    events["t"], events["p"] = np.sort(rng.integers(0, 10**9, n)), rng.choice([-1, 1], n)
    return {
        "i": i,
        "events": events,
        "frame": rng.standard_normal((4, 3)).astype(np.float32),
        "z": rng.standard_normal(2) + 1j * rng.standard_normal(2),
        "mask": rng.random(5) > 0.5,
        "empty": np.zeros((0, 3), np.int16),
        "meta": {
            "name": f"s{i}",
            "raw": bytes([i % 256]) * 3,
            "big": 2**62 + i,
            "neg": -i,
            "none": None,
            "ok": i % 2 == 0,
            "list": [1.5, "a", [i]],
        },
    }


class RichSource(Node):
    """Emits `count` rich payloads at `rate_hz` (0: as fast as allowed)."""

    outputs = ("out",)

    class Params(Params):
        count: int = Field(100, ge=0)
        rate_hz: float = Field(0.0, ge=0)
        seed: int = 0

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        t0 = ctx.clock.now_ns()
        for i in range(p.count):
            if ctx.stop_event.is_set():
                return
            if p.rate_hz:
                await ctx.clock.sleep_until_ns(t0 + int(i * 1e9 / p.rate_hz))
            await ctx.emit("out", rich_payload(i, p.seed))


class Merge(Node):
    """Relays whatever arrives on any input to `out` (for graphs with cycles)."""

    dynamic_inputs = True
    outputs = ("out",)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx

    async def on_input(self, port: str, msg: Message) -> None:
        await self.ctx.emit("out", msg.payload, t_sense=msg)
