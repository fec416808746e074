"""The node API: a small class with async hooks that talks only to its context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict

from .clock import Clock
from .message import Message, Payload

__all__ = ["Node", "Context", "NoParams", "Params", "BackendSetting"]

#: A hardware backend override as the graph's `backend:` or `edgeloop run --backend` gives it: a spec
#: string (`"rram:adc_bits=6"`) or a mapping (`{kind: rram, adc_bits: 6}`). Opaque to the runtime: it
#: carries the setting to nodes, which interpret it (the runtime imports no hardware code).
BackendSetting: TypeAlias = str | Mapping[str, object]


class Params(BaseModel):
    """Base for a node's declared parameters: strict, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=False, arbitrary_types_allowed=True)


class NoParams(Params):
    """For nodes that take no parameters."""


class Context(Protocol):
    """What a running node sees. It never touches sockets, queues or processes."""

    node_id: str
    params: Any
    clock: Clock
    log: logging.LoggerAdapter[logging.Logger]
    stop_event: asyncio.Event
    #: Graph-level or command-line hardware backend override (None if not set).
    backend_override: BackendSetting | None

    async def emit(self, port: str, payload: Payload, *, t_sense: int | Message | None = None) -> None:
        """Send `payload` on output `port`.

        `t_sense` is the sensing time in ns, or a received Message whose sensing time to keep
        (so end-to-end latency survives the loop); None means "now" (this node is the sensor).
        Awaiting it applies backpressure where a downstream input asks for it.
        """
        ...

    def counter(self, name: str, value: float = 1.0) -> None:
        """Add to a node-level metric (shown in the run summary and `edgeloop top`)."""
        ...

    def gauge(self, name: str, value: float) -> None:
        """Set a node-level metric to `value` (a level, not a count)."""
        ...


class Node:
    """Base class for nodes.

    Declare `inputs` and `outputs` (port names), a nested `Params` pydantic model, and override the
    hooks you need. Sources override `run(ctx)`, which the runtime calls once and cancels on stop;
    a source should loop `while not ctx.stop_event.is_set()` or just return when done.

    Example::

        class Scale(Node):
            inputs = ("x",)
            outputs = ("y",)

            class Params(Params):
                gain: float = 2.0

            async def setup(self, ctx: Context) -> None:
                self.ctx = ctx

            async def on_input(self, port: str, msg: Message) -> None:
                await self.ctx.emit("y", msg.payload * self.ctx.params.gain, t_sense=msg)
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    #: True for nodes that accept any input port name (e.g. console actuators, recorders).
    dynamic_inputs: ClassVar[bool] = False
    #: Parameters that name a file the node reads (`model`, `path`): `edgeloop check` and `run` make sure
    #: each exists before anything starts (None and `scheme:NAME` values, e.g. `pretrained:gestures`, are
    #: not files). Output files are not listed.
    file_params: ClassVar[tuple[str, ...]] = ()
    #: For actuators: the payload emitted/entered when an input goes stale (see `on_timeout`).
    Params: ClassVar[type[Params]] = NoParams

    async def setup(self, ctx: Context) -> None:
        """Called once before any input arrives or `run` starts."""

    async def on_input(self, port: str, msg: Message) -> None:
        """Called for every message that arrives on input `port`."""

    async def on_timeout(self, port: str) -> None:
        """Called when input `port` has had no message for its `timeout_ms` (armed after the first)."""

    async def run(self, ctx: Context) -> None:
        """Sources only: produce messages until done or `ctx.stop_event` is set."""

    async def teardown(self) -> None:
        """Called once when the graph stops, even after a failure."""

    @classmethod
    def is_source(cls) -> bool:
        return cls.run is not Node.run
