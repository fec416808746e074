"""Run one node without sockets or processes: feed inputs, capture outputs (like dora's MockNode)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from .clock import Clock, WallClock
from .errors import GraphError
from .message import Message, Payload
from .node import BackendSetting, Node

__all__ = ["NodeHarness"]


class _HarnessContext:
    def __init__(
        self,
        harness: NodeHarness,
        node_id: str,
        params: Any,
        clock: Clock,
        backend_override: BackendSetting | None,
    ) -> None:
        self._h = harness
        self.node_id = node_id
        self.params = params
        self.clock = clock
        self.log = logging.LoggerAdapter(logging.getLogger(f"edgeloop.node.{node_id}"), {"node": node_id})
        self.stop_event = asyncio.Event()
        self.backend_override = backend_override
        self.counters: dict[str, float] = defaultdict(float)
        self._seq: dict[str, int] = defaultdict(int)

    async def emit(self, port: str, payload: Payload, *, t_sense: int | Message | None = None) -> None:
        if self._h.node_cls.outputs and port not in self._h.node_cls.outputs:
            raise GraphError(
                f"node '{self.node_id}' emitted on undeclared output '{port}' "
                f"(declared: {', '.join(self._h.node_cls.outputs)})"
            )
        now = self.clock.now_ns()
        t = t_sense.t_sense_ns if isinstance(t_sense, Message) else (now if t_sense is None else int(t_sense))
        msg = Message(f"{self.node_id}/{port}", self._seq[port], t, now, payload)
        self._seq[port] += 1
        self._h.outputs[port].append(msg)
        if (
            self._h.max_messages is not None
            and sum(map(len, self._h.outputs.values())) >= self._h.max_messages
        ):
            self.stop_event.set()
        await asyncio.sleep(0)

    def counter(self, name: str, value: float = 1.0) -> None:
        self.counters[name] += value

    def gauge(self, name: str, value: float) -> None:
        self.counters[name] = float(value)


class NodeHarness:
    """Drive a node in-process for tests.

    Example::

        async with NodeHarness(Scale, {"gain": 3}) as h:
            await h.send("x", 2)
            assert h.payloads("y") == [6]
    """

    def __init__(
        self,
        node: type[Node] | Node,
        params: dict[str, Any] | None = None,
        *,
        node_id: str = "node",
        clock: Clock | None = None,
        backend_override: BackendSetting | None = None,
    ) -> None:
        self.node = node() if isinstance(node, type) else node
        self.node_cls = type(self.node)
        self.params = self.node_cls.Params(**(params or {}))
        self.outputs: dict[str, list[Message]] = defaultdict(list)
        self.max_messages: int | None = None
        self.ctx = _HarnessContext(self, node_id, self.params, clock or WallClock(), backend_override)
        self._seq_in: dict[str, int] = defaultdict(int)

    async def __aenter__(self) -> NodeHarness:
        await self.node.setup(self.ctx)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.node.teardown()

    async def send(self, port: str, payload: Payload, *, t_sense_ns: int | None = None) -> None:
        """Deliver one message to input `port` and wait for the node to handle it."""
        now = self.ctx.clock.now_ns()
        msg = Message(
            f"harness/{port}", self._seq_in[port], now if t_sense_ns is None else t_sense_ns, now, payload
        )
        self._seq_in[port] += 1
        await self.node.on_input(port, msg)

    async def run_source(self, *, max_messages: int | None = None, timeout_s: float = 10.0) -> None:
        """Run a source's `run` until it returns, `max_messages` are emitted, or `timeout_s` passes."""
        self.max_messages = max_messages
        task = asyncio.ensure_future(self.node.run(self.ctx))
        stopper = asyncio.ensure_future(self.ctx.stop_event.wait())
        try:
            await asyncio.wait({task, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.ctx.stop_event.set()
            for t in (task, stopper):
                if not t.done():
                    t.cancel()
            await asyncio.gather(task, stopper, return_exceptions=True)
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def payloads(self, port: str) -> list[Payload]:
        return [m.payload for m in self.outputs[port]]
