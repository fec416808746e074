"""A counting sink that checks order: the test and benchmark end of a graph."""

from __future__ import annotations

from pydantic import Field

from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["CounterSink"]


class CounterSink(Node):
    """Counts messages per input; with `check_order`, counts payload indices that go backwards or skip.

    Payloads may be ints or dicts with an "i" key (as `source.counter` emits). Results appear as the
    node's counters in the run summary and stats: `received`, `out_of_order`, `skipped`, `last`.
    """

    dynamic_inputs = True

    class Params(NodeParams):
        check_order: bool = True
        delay_ms: float = Field(0.0, ge=0, description="sleep per message: a slow consumer for QoS tests")

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.last: dict[str, int] = {}

    async def on_input(self, port: str, msg: Message) -> None:
        ctx = self.ctx
        ctx.counter("received")
        if ctx.params.delay_ms:
            await ctx.clock.sleep(ctx.params.delay_ms / 1000.0)
        if not ctx.params.check_order:
            return
        p = msg.payload
        i = p.get("i") if isinstance(p, dict) else p
        if not isinstance(i, int):
            return
        prev = self.last.get(port)
        if prev is not None:
            if i <= prev:
                ctx.counter("out_of_order")
            elif i > prev + 1:
                ctx.counter("skipped", i - prev - 1)
        self.last[port] = i
        ctx.gauge("last", i)
