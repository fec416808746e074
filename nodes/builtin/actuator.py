"""Actuators with a declared safe state: entered when an input goes stale or its data is too old."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["Actuator", "ConsoleActuator"]


class Actuator(Node):
    """Base of every actuator: fail-safe by construction.

    Declare `timeout_ms` on the input edge (graph QoS): when it passes without a message, the
    actuator enters `safe` and reports it on output `state`. Commands whose sensing time is older than
    `max_age_ms` are rejected even while messages keep arriving. Subclasses override `act(value)`.
    """

    # Declared variable-length: subclasses (swarm.mover) add ports. `tick` (e.g. a timer) keeps the
    # node alive after `cmd`'s upstream ends.
    inputs: ClassVar[tuple[str, ...]] = ("cmd", "tick")
    outputs: ClassVar[tuple[str, ...]] = ("state",)

    class Params(NodeParams):
        safe: Any = Field(0, description="the safe command, entered on stale input")
        max_age_ms: float | None = Field(
            None, gt=0, description="reject commands sensed longer ago than this"
        )

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.in_safe_state = True
        self.last: Any = ctx.params.safe
        await self.act(ctx.params.safe)

    async def act(self, value: Any) -> None:
        """Drive the hardware (subclasses)."""

    async def on_input(self, port: str, msg: Message) -> None:
        if port != "cmd":
            return
        p = self.ctx.params
        if p.max_age_ms is not None and self.ctx.clock.now_ns() - msg.t_sense_ns > p.max_age_ms * 1e6:
            self.ctx.counter("rejected_stale")
            await self._enter_safe("stale data")
            return
        self.ctx.counter("commands")
        if self.in_safe_state:
            self.in_safe_state = False
            self.ctx.counter("resumes")
            await self.ctx.emit("state", {"safe": False, "reason": "commands resumed"}, t_sense=msg)
        self.last = msg.payload
        await self.act(msg.payload)

    async def on_timeout(self, port: str) -> None:
        await self._enter_safe(f"input '{port}' stale")

    async def _enter_safe(self, reason: str) -> None:
        if self.in_safe_state:
            return
        self.in_safe_state = True
        self.ctx.counter("safe_entries")
        self.ctx.log.warning("entering safe state (%s)", reason)
        await self.act(self.ctx.params.safe)
        await self.ctx.emit("state", {"safe": True, "reason": reason})


class ConsoleActuator(Actuator):
    """Prints every `print_every`-th command (a stand-in for a motor driver in demos)."""

    class Params(Actuator.Params):
        print_every: int = Field(0, ge=0, description="0 = print nothing")

    async def setup(self, ctx: Context) -> None:
        self.n = 0
        await super().setup(ctx)

    async def act(self, value: Any) -> None:
        self.n += 1
        every = self.ctx.params.print_every
        if every and self.n % every == 0:
            self.ctx.log.info("actuate %s", _short(value))


def _short(value: Any) -> str:
    text = repr(value.tolist() if hasattr(value, "tolist") else value)
    return text if len(text) < 80 else text[:77] + "..."
