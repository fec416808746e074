"""Small transforms: an exponential low-pass filter, a gain, and a relay with an injectable delay."""

from __future__ import annotations

import time

import numpy as np
from pydantic import Field

from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["LowPass", "Relay"]


class LowPass(Node):
    """y[n] = y[n-1] + alpha·(x[n] − y[n-1]), then × gain: smooths a noisy sensor into a command."""

    inputs = ("x",)
    outputs = ("y",)

    class Params(NodeParams):
        alpha: float = Field(0.2, gt=0, le=1)
        gain: float = 1.0

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.y: np.ndarray | None = None

    async def on_input(self, port: str, msg: Message) -> None:
        x = np.asarray(msg.payload, dtype=np.float64)
        self.y = (
            x.copy()
            if self.y is None or self.y.shape != x.shape
            else self.y + self.ctx.params.alpha * (x - self.y)
        )
        await self.ctx.emit("y", self.y * self.ctx.params.gain, t_sense=msg)


class Relay(Node):
    """Passes every message on unchanged, keeping its sensing time; `delay_ms` injects a known delay."""

    inputs = ("in",)
    outputs = ("out",)

    class Params(NodeParams):
        delay_ms: float = Field(0.0, ge=0, description="busy delay per message (simulates work)")
        fail_after: int | None = Field(None, ge=0, description="raise after this many messages (fault tests)")

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.n = 0

    async def on_input(self, port: str, msg: Message) -> None:
        self.n += 1
        p = self.ctx.params
        if p.fail_after is not None and self.n > p.fail_after:
            raise RuntimeError(f"relay failing on purpose after {p.fail_after} messages")
        if p.delay_ms:
            end = time.perf_counter() + p.delay_ms / 1000.0
            while time.perf_counter() < end:  # busy on purpose: a CPU-bound stage, not an idle sleep
                pass
        await self.ctx.emit("out", msg.payload, t_sense=msg)
