"""One agent's worker: its node runners, sockets and routes, from binding to close, and its snapshot."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import zmq
import zmq.asyncio

from .clock import Clock, SimClock, WallClock
from .context import EmitFn
from .graph import Graph, RestartSpec
from .inbox import InboxReader
from .node import BackendSetting
from .routing import MAX_TAP_SUBSCRIPTIONS, Router
from .runner import NodeRunner
from .security import default_keys_dir
from .sockets import AgentSockets, env_limit
from .stats import edge_summary
from .supervision import NodeState
from .tracking import FlowTracker
from .wiring import Wiring

__all__ = ["AgentWorker"]

log = logging.getLogger("edgeloop.worker")
#: The largest frame a tap reads: a subscription, or a handshake command (CURVE's are ~300 B).
_TAP_FRAME_BYTES = 512

#: on_node_failed(node id, the hook it failed in, its last error): tells the launcher.
NodeFailedCallback = Callable[[str, str, str], Awaitable[None]]


class AgentWorker:
    """Owns the nodes of one agent and every socket they need; nodes only see their context.

    In order: `bind_inboxes()`, `connect_routes()`, `await wait_connected()`, `await start_nodes()`,
    `go()`; `done_event` is set once every node has ended; then `await stop()` and `close()`.
    `backend_override` (default: the graph's `backend:`) reaches every node's `ctx.backend_override`.
    """

    def __init__(
        self,
        graph: Graph,
        agent: str,
        wiring: Wiring,
        *,
        incarnation: int = 0,
        clock: Clock | None = None,
        zctx: zmq.asyncio.Context | None = None,
        keys_dir: Path | None = None,
        backend_override: BackendSetting | None = None,
    ) -> None:
        self.graph = graph
        self.agent = agent
        self.incarnation = incarnation
        self.clock = clock or (SimClock() if graph.spec.clock == "sim" else WallClock())
        self.zctx = zctx or zmq.asyncio.Context()
        self.sockets = AgentSockets(agent, graph, wiring, self.zctx, keys_dir or default_keys_dir())
        self.routed = False  # connect_routes ran (after the launcher's `connect`)
        self.stop_event = asyncio.Event()
        self.done_event = asyncio.Event()
        self.failed_nodes: set[str] = set()
        self.on_node_failed: NodeFailedCallback | None = None
        self.metrics = os.environ.get("EDGELOOP_METRICS", "1") != "0"
        self.tracker = FlowTracker(graph.spec.deadline_ms, graph.spec.too_late_ms) if self.metrics else None
        backend = backend_override if backend_override is not None else graph.spec.backend
        whole_graph = len(graph.agents) == 1
        self.runners: dict[str, NodeRunner] = {}
        has_outgoing = {e.source.split("/")[0] for e in graph.edges if not e.is_timer}
        for spec in graph.nodes_of(agent):
            r = NodeRunner(
                self,
                spec,
                graph.classes[spec.id],
                graph.params[spec.id],
                spec.restart or RestartSpec(),
                self.clock,
                stop_event=self.stop_event,
                metrics=self.metrics,
                whole_graph=whole_graph,
                backend_override=backend,
            )
            if spec.id not in has_outgoing:
                r.tracker = self.tracker
            self.runners[spec.id] = r
        self.router = Router(
            graph,
            agent,
            self.runners,
            self.clock,
            incarnation=incarnation,
            stop_event=self.stop_event,
            max_message_bytes=self.sockets.max_message_bytes,
            max_tap_subscriptions=env_limit("EDGELOOP_MAX_TAP_SUBSCRIPTIONS", MAX_TAP_SUBSCRIPTIONS),
        )
        #: The runners' `emit` goes straight to the router (no extra await on the hot path).
        self.emit: EmitFn = self.router.emit
        self._inbox: zmq.asyncio.Socket | None = None  # the lossy inbox (PULL)
        self._tap: zmq.asyncio.Socket | None = None  # the XPUB for tools
        self._bp_inboxes: list[tuple[zmq.asyncio.Socket, NodeRunner, str]] = []
        self._readers: list[InboxReader] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._usage = _ProcessUsage()

    @property
    def wiring(self) -> Wiring:
        return self.sockets.wiring

    @property
    def rebound(self) -> dict[str, str]:
        """Proposed tcp endpoint -> the one bound instead (its port was taken on this host)."""
        return self.sockets.rebound

    # ----- start-up -----
    def bind_inboxes(self) -> None:
        """Bind this agent's lossy inbox, one inbox per backpressure input fed from elsewhere, and the tap."""
        w = self.wiring
        if self.agent in w.tap:
            # XPUB sees subscriptions, so the hot path copies a topic to the tap only while someone listens.
            self._tap = self.sockets.make(zmq.XPUB)
            self._tap.setsockopt(zmq.XPUB_VERBOSE, 1)
            # Subscriptions take effect only when the router applies them (`watch_tap`: capped). ZeroMQ
            # keeps every subscription it reads (~50 B per byte of it) until its sender leaves: a longer
            # one disconnects its sender at once.
            self._tap.setsockopt(zmq.XPUB_MANUAL, 1)
            self._tap.setsockopt(zmq.MAXMSGSIZE, _TAP_FRAME_BYTES)
            self.sockets.bind(self._tap, w.tap[self.agent])
            self.router.set_tap(self._tap)
        self._inbox = self.sockets.make(zmq.PULL)
        self.sockets.bind(self._inbox, w.inbox[self.agent])
        for key, ep in w.bp_inbox.items():
            node_id, port = key.split("/")
            if node_id in self.runners:
                s = self.sockets.make(zmq.PULL)
                self.sockets.bind(s, ep)
                self._bp_inboxes.append((s, self.runners[node_id], port))

    def connect_routes(self, wiring: Wiring | None = None) -> None:
        """Build every output's route (once); `wiring` replaces endpoints that other workers had to move."""
        if self.routed:
            return
        if wiring is not None:
            self.sockets.wiring = wiring
        self.router.connect(self.sockets.push, self.wiring)
        self.routed = True

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """The ready barrier: every PUSH has a live connection before any source starts."""
        await self.sockets.wait_connected(timeout_s)

    async def start_nodes(self) -> None:
        """Start reading the inboxes and set every node up (sinks first, sources last)."""
        if self._tap is not None:
            task = asyncio.create_task(self.router.watch_tap(self._tap), name="tap")
            task.add_done_callback(_log_task_death)
            self._tasks.append(task)
        if self._inbox is not None:
            self._readers.append(self.router.lossy_reader(self._inbox))
            self._readers += [self.router.bp_reader(s, r, p) for s, r, p in self._bp_inboxes]
            for reader in self._readers:
                reader.start()
        # Sinks first, sources last, so nothing a source emits finds a node not yet set up.
        for r in sorted(self.runners.values(), key=lambda r: r.cls.is_source()):
            await r.start()

    def go(self) -> None:
        """Every agent's nodes are set up: start timers and sources."""
        for r in self.runners.values():
            r.go()
        self._check_done()

    # ----- what runners report (the `NodeHost` protocol) -----
    async def node_finished(self, runner: NodeRunner) -> None:
        await self.router.finish(runner.node_id)
        self._check_done()

    async def node_failed(self, runner: NodeRunner) -> None:
        self.failed_nodes.add(runner.node_id)
        if self.on_node_failed is not None:
            await self.on_node_failed(runner.node_id, runner.failed_hook, runner.last_error)
        await self.node_finished(runner)

    def _check_done(self) -> None:
        if all(r.state is NodeState.FINISHED or r.state is NodeState.FAILED for r in self.runners.values()):
            self.done_event.set()

    # ----- stop -----
    async def stop(self) -> None:
        """Stop reading, cancel every node's tasks and tear them down."""
        self.stop_event.set()
        for reader in self._readers:
            reader.close()
        await asyncio.gather(*(r.stop() for r in self.runners.values()), return_exceptions=True)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.router.close()

    def close(self) -> None:
        self.sockets.close()

    def snapshot(self) -> dict[str, Any]:
        """Stats for the launcher, `edgeloop top` and the exit summary (plain msgpack types)."""
        cpu_s, rss = self._usage.read()
        edges = {}
        for r in self.runners.values():
            for st in r.stats.values():
                edges[st.name] = edge_summary(st)
        inbox = self.wiring.inbox.get(self.agent, "")
        return {
            "agent": self.agent,
            "pid": os.getpid(),
            "incarnation": self.incarnation,
            "cpu_s": cpu_s,
            "rss": rss,
            "time": time.time(),
            "malformed": self.router.malformed,
            "unroutable": self.router.unroutable,
            "tap_ignored": self.router.tap_ignored,
            "transport": {
                "inbox": inbox,
                "host": socket.gethostname(),
                "curve": self.sockets.is_curve(inbox),
            },
            "nodes": {r.node_id: r.snapshot() for r in self.runners.values()},
            "edges": edges,
            "outputs": self.router.outputs(),
            "paths": self.tracker.snapshot() if self.tracker is not None else {},
        }


class _ProcessUsage:
    """This process's CPU time and resident memory, read cheaply (twice a second, on the data loop)."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._proc: psutil.Process | None = None
        try:
            self._statm: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._statm = None
            self._proc = psutil.Process()

    def read(self) -> tuple[float, int]:
        t = os.times()
        if self._statm is None:
            rss = int(self._proc.memory_info().rss) if self._proc is not None else 0
            return t.user + t.system, rss
        return t.user + t.system, int(os.pread(self._statm, 128, 0).split()[1]) * self._page


def _log_task_death(task: asyncio.Task[Any]) -> None:
    """A task that dies stops its work without a word: say so at once (its messages then count as gaps)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())
