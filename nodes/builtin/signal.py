"""Synthetic signal sources: a noisy sine sensor and a counter, for demos, tests and benchmarks."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["SineSensor", "CounterSource"]


class SineSensor(Node):
    """A sensor sampling a noisy sine at `rate_hz`; emits a float64 array of `channels` values."""

    outputs = ("value",)

    class Params(NodeParams):
        rate_hz: float = Field(200.0, gt=0, le=100_000)
        freq_hz: float = Field(1.0, ge=0)
        amplitude: float = 1.0
        noise: float = Field(0.05, ge=0)
        channels: int = Field(1, ge=1, le=1_000_000)
        count: int | None = Field(
            None, ge=0, description="stop after this many samples (None: run until stopped)"
        )
        seed: int = 0

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        rng = np.random.default_rng(p.seed)
        period_ns = int(1e9 / p.rate_hz)
        t0 = ctx.clock.now_ns()
        i = 0
        while not ctx.stop_event.is_set() and (p.count is None or i < p.count):
            t_ns = t0 + i * period_ns
            await ctx.clock.sleep_until_ns(t_ns)
            phase = 2 * math.pi * p.freq_hz * (t_ns - t0) / 1e9
            value = p.amplitude * math.sin(phase) + p.noise * rng.standard_normal(p.channels)
            await ctx.emit("value", value, t_sense=t_ns)
            i += 1


class CounterSource(Node):
    """Emits 0, 1, 2, … (`count` of them) as fast as allowed or at `rate_hz`, with optional padding.

    With `payload_bytes` > 0 the payload is `{"i": i, "pad": uint8[payload_bytes]}`, for transport tests.
    """

    outputs = ("out",)

    class Params(NodeParams):
        count: int = Field(1000, ge=0)
        rate_hz: float = Field(0.0, ge=0, description="0 = as fast as possible")
        payload_bytes: int = Field(0, ge=0, le=256 * 1024 * 1024)

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        pad = np.zeros(p.payload_bytes, np.uint8) if p.payload_bytes else None
        period_ns = int(1e9 / p.rate_hz) if p.rate_hz else 0
        t0 = ctx.clock.now_ns()
        for i in range(p.count):
            if ctx.stop_event.is_set():
                return
            if period_ns:
                await ctx.clock.sleep_until_ns(t0 + i * period_ns)
            await ctx.emit("out", i if pad is None else {"i": i, "pad": pad})
