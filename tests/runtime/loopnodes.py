"""Nodes used only by the runtime tests, loaded by `module:Class` (workers get this folder on PYTHONPATH)."""

from __future__ import annotations

import asyncio

from runtime.message import Message
from runtime.node import Context, Node, Params


class Pinger(Node):
    """Seeds a feedback cycle and counts round trips until `rounds` have come back."""

    inputs = ("back",)
    outputs = ("out",)

    class Params(Params):
        rounds: int = 100

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.done = asyncio.Event()
        self.n = 0

    async def run(self, ctx: Context) -> None:
        await ctx.emit("out", 0)
        await self.done.wait()

    async def on_input(self, port: str, msg: Message) -> None:
        self.n += 1
        self.ctx.counter("rounds")
        if msg.payload != self.n - 1:
            self.ctx.counter("mismatch")
        if self.n >= self.ctx.params.rounds:
            self.done.set()
        else:
            await self.ctx.emit("out", self.n)


class Schedule(Node):
    """Emits its index at each time of `at_ms` (from the start, on `ctx.clock`), then ends."""

    outputs = ("out",)

    class Params(Params):
        at_ms: list[float] = [0.0]

    async def run(self, ctx: Context) -> None:
        t0 = ctx.clock.now_ns()
        for i, t in enumerate(ctx.params.at_ms):
            await ctx.clock.sleep_until_ns(t0 + int(t * 1e6))
            await ctx.emit("out", i)


class Blocking(Node):
    """Computes for `ms` per message without ever awaiting (time.sleep stands in for numpy work)."""

    inputs = ("in",)

    class Params(Params):
        ms: float = 10.0

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx

    async def on_input(self, port: str, msg: Message) -> None:
        import time

        time.sleep(self.ctx.params.ms / 1000)
        self.ctx.counter("handled")
