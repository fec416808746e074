"""The context a node sees inside a worker (`runtime.node.Context`): emit, params, clock, log, stop, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .clock import Clock
from .message import Message, Payload
from .node import BackendSetting

__all__ = ["NodeContext", "Emitter", "EmitFn"]

#: emit(node id, output port, payload, t_sense (None: now), origin (the path's first topic, or "")).
EmitFn = Callable[[str, str, Payload, int | None, str], Awaitable[None]]


class Emitter(Protocol):
    """Where a node's messages go: the worker's routes (looked up at each emit)."""

    @property
    def emit(self) -> EmitFn:
        """Route one output message of a node."""
        ...


class NodeContext:
    """The `ctx` a node sees: emit, params, clock, log, stop_event, counter."""

    def __init__(
        self,
        host: Emitter,
        node_id: str,
        params: Any,
        clock: Clock,
        stop_event: asyncio.Event,
        backend_override: BackendSetting | None,
    ) -> None:
        self._host = host
        self.node_id = node_id
        self.params = params
        self.clock = clock
        self.log = logging.LoggerAdapter(logging.getLogger("edgeloop.node"), {"node": node_id})
        self.stop_event = stop_event
        self.counters: dict[str, float] = defaultdict(float)
        #: The graph-level (or `edgeloop run --backend`) hardware backend override, or None: inference
        #: nodes apply it on top of their own `backend` parameter.
        self.backend_override = backend_override

    async def emit(self, port: str, payload: Payload, *, t_sense: int | Message | None = None) -> None:
        if isinstance(t_sense, Message):
            await self._host.emit(
                self.node_id, port, payload, t_sense.t_sense_ns, t_sense.origin or t_sense.topic
            )
        else:
            await self._host.emit(self.node_id, port, payload, t_sense, "")

    def counter(self, name: str, value: float = 1.0) -> None:
        self.counters[name] += value

    def gauge(self, name: str, value: float) -> None:
        self.counters[name] = float(value)
