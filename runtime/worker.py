"""One agent's process: its nodes on one asyncio loop, their sockets (CURVE across hosts), routing, control."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import psutil
import zmq
import zmq.asyncio

from .clock import Clock, SimClock, WallClock
from .codec import EOS, decode, encode, readonly, to_wire_payload
from .errors import CodecError, EdgeloopError, GraphError, TransportError
from .graph import Graph, RestartSpec, load_graph
from .inbox import InboxReader
from .message import Message, Payload
from .runner import NodeRunner
from .security import CurveServerAuth, configure_curve_client, configure_curve_server, default_keys_dir
from .stats import edge_summary
from .tracking import FlowTracker
from .wiring import LAUNCHER_KEY, Wiring

__all__ = ["AgentWorker", "WorkerPlan", "main"]

log = logging.getLogger("edgeloop.worker")
_HWM = 1000
_process_is_ours = False  # set by main(): this process exists only to run the worker
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_HEARTBEAT_S = 0.5
_YIELD_EVERY = 8  # emits between forced loop turns (fairness between a busy source and its neighbours)


@dataclass
class WorkerPlan:
    """Everything a worker process needs, passed by the launcher as JSON."""

    agent: str
    graph_text: str
    graph_file: str
    overrides: list[str]
    wiring: dict[str, Any]
    incarnation: int = 0
    run_dir: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        return cls(**json.loads(text))


@dataclass
class _Route:
    """Where one output goes."""

    topic: str
    local: list[tuple[NodeRunner, str]] = field(default_factory=list)
    lossy: list[zmq.Socket[Any]] = field(default_factory=list)  # sync shadows of PUSH sockets
    bp: list[tuple[zmq.asyncio.Socket, zmq.Socket[Any]]] = field(default_factory=list)
    seq: int = 0
    sent: int = 0
    send_drops: int = 0
    bytes: int = 0


class AgentWorker:
    """Owns the nodes of one agent and every socket they need; nodes only see their context."""

    def __init__(self, graph: Graph, agent: str, wiring: Wiring, *, incarnation: int = 0,
                 clock: Clock | None = None, zctx: zmq.asyncio.Context | None = None,
                 keys_dir: Path | None = None) -> None:
        self.graph = graph
        self.agent = agent
        self.wiring = wiring
        self.keys_dir = keys_dir or default_keys_dir()
        self._auths: list[CurveServerAuth] = []
        self.rebound: dict[str, str] = {}  # proposed tcp endpoint -> the one bound instead (port was taken)
        self.routed = False  # connect_routes ran (after the launcher's `connect`)
        self.incarnation = incarnation
        self.clock = clock or (SimClock() if graph.spec.clock == "sim" else WallClock())
        self.zctx = zctx or zmq.asyncio.Context()
        self.stop_event = asyncio.Event()
        self.done_event = asyncio.Event()
        self.failed_nodes: set[str] = set()
        self.malformed = 0
        self.unroutable = 0
        self.metrics = os.environ.get("EDGELOOP_METRICS", "1") != "0"
        self.tracker = FlowTracker(graph.spec.deadline_ms, graph.spec.too_late_ms) if self.metrics else None
        self.runners: dict[str, NodeRunner] = {}
        has_outgoing = {e.source.split("/")[0] for e in graph.edges if not e.is_timer}
        for spec in graph.nodes_of(agent):
            restart = spec.restart or RestartSpec()
            r = NodeRunner(self, spec, graph.classes[spec.id], graph.params[spec.id], restart, self.clock)
            if spec.id not in has_outgoing:
                r.tracker = self.tracker
            self.runners[spec.id] = r
        self.routes: dict[tuple[str, str], _Route] = {}
        self._sockets: list[zmq.asyncio.Socket] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._readers: list[InboxReader] = []
        self._remote_in: dict[str, list[tuple[NodeRunner, str]]] = {}  # topic -> local targets fed remotely
        self.on_event: Any = None  # async callback(kind, dict) to the launcher
        self._emits_since_yield = 0
        self.tapped: dict[str, int] = {}  # topic -> subscriber count on the tap
        self._usage = _ProcessUsage()

    # ----- sockets -----
    def _socket(self, kind: int) -> zmq.asyncio.Socket:
        s = self.zctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, _HWM)
        s.setsockopt(zmq.RCVHWM, _HWM)
        self._sockets.append(s)
        return s

    def curve_key(self, name: str, *, secret: bool = False) -> Path:
        """The key file `name` in this host's key directory; a missing one is an error that says what to do."""
        path = self.keys_dir / f"{name}.key{'_secret' if secret else ''}"
        if not path.is_file():
            what = "secret key" if secret else "public key"
            fix = (f"run `edgeloop keys {name} --dir {self.keys_dir}` on this host" if secret else
                   f"copy {name}.key (public) from the host that made it")
            raise TransportError(f"agent '{self.agent}': CURVE {what} {path} is missing; {fix}")
        return path

    def _curve(self, ep: str) -> bool:
        return self.wiring.curve and ep.startswith("tcp://")

    def _bind(self, sock: zmq.asyncio.Socket, ep: str) -> None:
        """Bind `ep` (a CURVE server across hosts); a taken tcp port is replaced by a free one and reported."""
        if self._curve(ep):
            self._auths.append(configure_curve_server(sock, self.curve_key(self.agent, secret=True), self.keys_dir))
        addr = self.wiring.bind.get(ep, ep)
        try:
            sock.bind(addr)
        except zmq.ZMQError as exc:
            if not addr.startswith("tcp://") or exc.errno != zmq.EADDRINUSE:
                raise TransportError(f"agent '{self.agent}' cannot bind {addr}: {exc}") from exc
            sock.bind(addr.rsplit(":", 1)[0] + ":*")
            port = str(sock.getsockopt_string(zmq.LAST_ENDPOINT)).rsplit(":", 1)[1]
            self.rebound[ep] = f"{ep.rsplit(':', 1)[0]}:{port}"
            log.warning("%s was taken on this host: bound %s instead", addr, self.rebound[ep])

    def bind_inboxes(self) -> None:
        """Bind this agent's lossy inbox, one inbox per backpressure input fed from elsewhere, and the tap."""
        w = self.wiring
        if self.agent in w.tap:
            # XPUB sees subscriptions, so the hot path copies a topic to the tap only while someone listens.
            self._tap = self._socket(zmq.XPUB)
            self._tap.setsockopt(zmq.XPUB_VERBOSE, 1)
            self._bind(self._tap, w.tap[self.agent])
            self._tap_sync: zmq.Socket[Any] = zmq.Socket.shadow(self._tap.underlying)
        self._inbox = self._socket(zmq.PULL)
        self._bind(self._inbox, w.inbox[self.agent])
        self._bp_inboxes: list[tuple[zmq.asyncio.Socket, NodeRunner, str]] = []
        for key, ep in w.bp_inbox.items():
            node_id, port = key.split("/")
            if node_id in self.runners:
                s = self._socket(zmq.PULL)
                self._bind(s, ep)
                self._bp_inboxes.append((s, self.runners[node_id], port))

    def connect_routes(self) -> None:
        """Build every output's route: local queues by reference, remote agents over PUSH sockets."""
        push_by_ep: dict[str, zmq.asyncio.Socket] = {}
        self._monitors: list[tuple[zmq.asyncio.Socket, zmq.asyncio.Socket]] = []

        def push(ep: str) -> zmq.asyncio.Socket:
            if ep not in push_by_ep:
                s = self._socket(zmq.PUSH)
                if self._curve(ep):
                    server = self.wiring.agent_of_endpoint(self.graph, ep)
                    if server is None:
                        raise GraphError(f"agent '{self.agent}': no agent binds {ep}")
                    configure_curve_client(s, self.curve_key(self.agent, secret=True), self.curve_key(server))
                # Monitor before connecting, so the CONNECTED event cannot be missed.
                self._monitors.append((s, s.get_monitor_socket(zmq.EVENT_CONNECTED)))
                s.connect(ep)
                push_by_ep[ep] = s
            return push_by_ep[ep]

        for node_id in self.runners:
            for port in self.graph.outputs[node_id]:
                self.routes[(node_id, port)] = _Route(f"{node_id}/{port}")
        lossy_agents: dict[tuple[str, str], set[str]] = {}
        for e in self.graph.edges:
            if e.is_timer:
                continue
            src_node, port = e.source.split("/")
            src_agent, dst_agent = self.graph.agent_of(src_node), self.graph.agent_of(e.target_node)
            if src_agent == self.agent:
                route = self.routes[(src_node, port)]
                if dst_agent == self.agent:
                    route.local.append((self.runners[e.target_node], e.target_input))
                elif e.spec.policy == "backpressure":
                    s = push(self.wiring.bp_inbox[f"{e.target_node}/{e.target_input}"])
                    route.bp.append((s, zmq.Socket.shadow(s.underlying)))
                else:
                    lossy_agents.setdefault((src_node, port), set()).add(dst_agent)
            if dst_agent == self.agent and src_agent != self.agent and e.spec.policy != "backpressure":
                self._remote_in.setdefault(e.source, []).append((self.runners[e.target_node], e.target_input))
        for (src_node, port), agents in lossy_agents.items():
            for a in sorted(agents):
                self.routes[(src_node, port)].lossy.append(zmq.Socket.shadow(push(self.wiring.inbox[a]).underlying))
        self._push_sockets = list(push_by_ep.values())
        self.routed = True

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """The ready barrier: every PUSH has a live connection before any source starts."""
        monitors, self._monitors = self._monitors, []
        try:
            deadline = time.monotonic() + timeout_s
            for s, mon in monitors:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise GraphError(f"agent '{self.agent}': a peer did not accept connections within "
                                         f"{timeout_s:.0f} s ({s.getsockopt(zmq.LAST_ENDPOINT)!r})")
                    if await mon.poll(int(remaining * 1000)):
                        evt = await mon.recv_multipart()
                        if int.from_bytes(evt[0][:2], "little") == zmq.EVENT_CONNECTED:
                            break
        finally:
            for s, mon in monitors:
                s.disable_monitor()
                mon.close(linger=0)

    # ----- data path -----
    async def emit(self, node_id: str, port: str, payload: Payload, t_sense: int | None, origin: str = "") -> None:
        route = self.routes.get((node_id, port))
        if route is None:
            raise GraphError(f"node '{node_id}' emitted on output '{port}', which is not declared "
                             f"(outputs: {', '.join(self.graph.outputs[node_id]) or 'none'})")
        now = time.time_ns() if isinstance(self.clock, WallClock) else self.clock.now_ns()
        payload = to_wire_payload(payload)
        msg = Message(route.topic, route.seq, now if t_sense is None else t_sense, now, payload,
                      origin or route.topic)
        route.seq += 1
        route.sent += 1
        if route.local:
            ro = Message(msg.topic, msg.seq, msg.t_sense_ns, msg.t_emit_ns, readonly(payload), msg.origin)
            for runner, inp in route.local:
                await runner.deliver(inp, ro, blocking=True)
        tapped = route.topic in self.tapped
        if route.lossy or route.bp or tapped:
            frames = encode(msg, incarnation=self.incarnation, wire_ready=True)
            if tapped:
                try:
                    _send_nowait(self._tap_sync, frames)
                except zmq.Again:
                    pass  # a slow tool never slows the graph
            for f in frames:
                route.bytes += len(f) if type(f) is bytes else memoryview(f).nbytes
            for sync in route.lossy:
                try:
                    _send_nowait(sync, frames)
                except zmq.Again:
                    route.send_drops += 1  # the receiver counts the same loss as a sequence gap
            for asock, sync in route.bp:
                try:
                    _send_nowait(sync, frames)
                except zmq.Again:
                    await self._send_blocking(asock, frames)
        # Emitting never waits on lossy paths, so a source running flat out would starve the other
        # nodes of its process: give the loop a turn every few messages.
        self._emits_since_yield += 1
        if self._emits_since_yield >= _YIELD_EVERY:
            self._emits_since_yield = 0
            await asyncio.sleep(0)

    async def _send_blocking(self, sock: zmq.asyncio.Socket, frames: list[Any]) -> None:
        while not self.stop_event.is_set():
            if await sock.poll(200, zmq.POLLOUT):  # type: ignore[call-arg]
                await sock.send_multipart(frames, copy=False)
                return

    async def _send_eos(self, route: _Route) -> None:
        eos = Message(route.topic, route.seq, 0, time.time_ns(), None)
        for runner, inp in route.local:
            runner.close_input(inp)
        if route.lossy or route.bp:
            frames = encode(eos, kind=EOS, incarnation=self.incarnation)
            for sync in route.lossy:
                sock = zmq.asyncio.Socket.shadow(sync.underlying)
                await asyncio.wait_for(self._send_blocking(sock, frames), timeout=5.0)
            for asock, _ in route.bp:
                await asyncio.wait_for(self._send_blocking(asock, frames), timeout=5.0)

    def _handle_frames(self, frames: list[Any], targets_for: Any) -> list[tuple[NodeRunner, str, Message, str]]:
        try:
            kind, msg, inc = decode(frames)
        except CodecError as exc:
            self.malformed += 1
            if self.malformed <= 10 or self.malformed % 1000 == 0:
                log.warning("dropped malformed message #%d: %s", self.malformed, exc)
            return []
        targets = targets_for(msg.topic)
        if not targets:
            self.unroutable += 1
            return []
        out = []
        for runner, port in targets:
            st = runner.stats[port]
            # An EOS carries the number of messages sent, so a trailing gap is counted exactly too.
            st.observe_seq(msg.topic, inc, msg.seq)
            if kind == EOS:
                runner.close_input(port)
            else:
                out.append((runner, port, msg, kind))
        return out

    def _lossy_handler(self) -> Any:
        """The agent's lossy inbox: each message goes to every local input it feeds, dropped per policy."""
        targets_for = self._remote_in.get

        def handle(frames: list[Any]) -> bool:
            for runner, port, msg, _ in self._handle_frames(frames, targets_for):
                runner.deliver_nowait(port, msg)
            return True

        return handle

    def _bp_reader(self, sock: zmq.asyncio.Socket, runner: NodeRunner, port: str) -> InboxReader:
        """One backpressure input fed from another agent: reading pauses while its queue is full, so
        unread messages stay in ZeroMQ and the sender's PUSH blocks at its high-water mark."""
        q = runner.queues[port]
        targets = [(runner, port)]

        def targets_for(_topic: str) -> list[tuple[NodeRunner, str]]:
            return targets

        def handle(frames: list[Any]) -> bool:
            for r, p, msg, _ in self._handle_frames(frames, targets_for):
                r.deliver_nowait(p, msg)
            if q.full():
                task = asyncio.ensure_future(resume_when_space())
                self._tasks.append(task)
                task.add_done_callback(self._tasks.remove)
                return False
            return True

        async def resume_when_space() -> None:
            await q.wait_space()
            reader.resume()

        reader = InboxReader(zmq.Socket.shadow(sock.underlying), handle, f"inbox of {runner.node_id}/{port}")
        return reader

    async def _watch_tap(self) -> None:
        """Track which topics tools subscribed to (frames: 1 = subscribe, 0 = unsubscribe, then the prefix)."""
        while True:
            try:
                frame = await self._tap.recv()
            except zmq.Again:
                continue  # see _pump_bp
            if not frame:
                continue
            topic = frame[1:].decode(errors="replace")
            n = self.tapped.get(topic, 0) + (1 if frame[0] == 1 else -1)
            if n > 0:
                self.tapped[topic] = n
            else:
                self.tapped.pop(topic, None)

    # ----- lifecycle -----
    async def start_nodes(self) -> None:
        if hasattr(self, "_tap"):
            self._tasks.append(asyncio.create_task(self._watch_tap(), name="tap"))
        if hasattr(self, "_inbox"):
            self._readers.append(InboxReader(zmq.Socket.shadow(self._inbox.underlying), self._lossy_handler(),
                                             f"agent '{self.agent}' inbox"))
            self._readers += [self._bp_reader(s, r, p) for s, r, p in self._bp_inboxes]
            for reader in self._readers:
                reader.start()
        for t in self._tasks:
            t.add_done_callback(_log_task_death)
        # Sinks first, sources last, so nothing a source emits finds a node not yet set up.
        order = sorted(self.runners.values(), key=lambda r: r.cls.is_source())
        for r in order:
            try:
                await r.start()
            except Exception as exc:
                await r._on_failure("setup", exc)

    def go(self) -> None:
        for r in self.runners.values():
            r.go()
        if all(r.state in ("finished", "failed") for r in self.runners.values()):
            self.done_event.set()

    async def node_finished(self, runner: NodeRunner) -> None:
        for port in self.graph.outputs[runner.node_id]:
            await self._send_eos(self.routes[(runner.node_id, port)])
        if all(r.state in ("finished", "failed") for r in self.runners.values()):
            self.done_event.set()

    async def node_failed(self, runner: NodeRunner) -> None:
        self.failed_nodes.add(runner.node_id)
        if self.on_event is not None:
            await self.on_event("node_failed", {"node": runner.node_id, "error": runner.last_error})
        await self.node_finished(runner)

    async def stop(self) -> None:
        self.stop_event.set()
        for reader in self._readers:
            reader.close()
        await asyncio.gather(*(r.stop() for r in self.runners.values()), return_exceptions=True)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self) -> None:
        for s in self._sockets:
            s.close(linger=0)
        self._sockets.clear()
        for auth in self._auths:  # after the CURVE server sockets: a pending handshake would block term()
            auth.close()
        self._auths.clear()

    def snapshot(self) -> dict[str, Any]:
        """Stats for the launcher, `edgeloop top` and the exit summary (plain msgpack types)."""
        cpu_s, rss = self._usage.read()
        edges = {}
        for r in self.runners.values():
            for st in r.stats.values():
                edges[st.name] = edge_summary(st)
        outputs = {route.topic: {"sent": route.sent, "send_drops": route.send_drops, "bytes": route.bytes}
                   for route in self.routes.values()}
        return {"agent": self.agent, "pid": os.getpid(), "incarnation": self.incarnation,
                "cpu_s": cpu_s, "rss": rss, "time": time.time(),
                "malformed": self.malformed, "unroutable": self.unroutable,
                "transport": {"inbox": self.wiring.inbox.get(self.agent, ""), "host": socket.gethostname(),
                              "curve": self._curve(self.wiring.inbox.get(self.agent, ""))},
                "nodes": {r.node_id: r.snapshot() for r in self.runners.values()},
                "edges": edges, "outputs": outputs,
                "paths": self.tracker.snapshot() if self.tracker is not None else {}}


class _ProcessUsage:
    """This process's CPU time and resident memory, read cheaply (twice a second, on the data loop)."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            self._statm: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._statm = None
            self._proc = psutil.Process()

    def read(self) -> tuple[float, int]:
        t = os.times()
        if self._statm is None:
            return t.user + t.system, int(self._proc.memory_info().rss)
        return t.user + t.system, int(os.pread(self._statm, 128, 0).split()[1]) * self._page


def _send_nowait(sock: zmq.Socket[Any], frames: list[Any]) -> None:
    """`send_multipart(frames, NOBLOCK)` without pyzmq's per-call checks and flag enums (the hot path).

    ZeroMQ checks the high-water mark on a message's first frame only, so `zmq.Again` can come from
    the first `send` alone and a message is never sent in part."""
    last = len(frames) - 1
    for i, f in enumerate(frames):
        sock.send(f, _NOBLOCK_MORE if i < last else _NOBLOCK, copy=False)


def _log_task_death(task: asyncio.Task[Any]) -> None:
    """A pump that dies stops delivery without a word: say so at once (its messages then count as gaps)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())


# ----- process entry point -----
class _NodeFilter(logging.Filter):
    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = getattr(record, "node", "-")
        record.agent = self.agent
        return True


def setup_logging(agent: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s [%(agent)s/%(node)s] %(message)s",
                                           "%H:%M:%S"))
    handler.addFilter(_NodeFilter(agent))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("EDGELOOP_LOG", "INFO").upper())


async def _serve(plan: WorkerPlan, graph: Graph | None = None) -> int:
    graph = graph or load_graph(plan.graph_file, plan.overrides, text=plan.graph_text)
    wiring = Wiring.from_dict(plan.wiring)
    zctx = zmq.asyncio.Context()
    worker = AgentWorker(graph, plan.agent, wiring, incarnation=plan.incarnation, zctx=zctx)
    ctl = zctx.socket(zmq.DEALER)
    ctl.setsockopt(zmq.LINGER, 200)
    ctl.setsockopt(zmq.IDENTITY, plan.agent.encode())
    if wiring.control.startswith("tcp://"):
        # Across hosts: ZMTP heartbeats notice a dead link; CURVE with the launcher's public key.
        ctl.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        ctl.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        if wiring.curve:
            try:
                configure_curve_client(ctl, worker.curve_key(plan.agent, secret=True), worker.curve_key(LAUNCHER_KEY))
            except TransportError as exc:
                log.error("%s", exc)
                ctl.close(linger=0)
                zctx.term()
                return 3
    ctl.connect(wiring.control)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)

    async def send(kind: str, body: dict[str, Any]) -> None:
        await ctl.send(msgpack.packb({"t": kind, "agent": plan.agent, "inc": plan.incarnation, **body}))

    worker.on_event = send
    exit_code = 0
    try:
        worker.bind_inboxes()
        await send("bound", {"pid": os.getpid(), "endpoints": worker.rebound})
        # Wait for 'connect' (every agent has bound), then the ready barrier, then 'start'.
        started = False
        heartbeat_at = time.monotonic()
        parent = int(os.environ.get("EDGELOOP_PARENT_PID", "0"))
        while not stop_requested.is_set():
            if parent and os.getppid() != parent:
                log.error("launcher (pid %d) is gone: stopping", parent)
                break
            timeout_ms = max(0, int((heartbeat_at - time.monotonic()) * 1000))
            if await ctl.poll(min(timeout_ms, 100)):
                cmd = msgpack.unpackb(await ctl.recv(), raw=False)
                kind = cmd.get("t") if isinstance(cmd, dict) else None
                if kind == "connect":
                    if not worker.routed:
                        if isinstance(cmd.get("wiring"), dict):  # endpoints other workers had to move
                            worker.wiring = Wiring.from_dict(cmd["wiring"])
                        worker.connect_routes()
                    await worker.wait_connected()
                    await send("ready", {})
                elif kind == "start" and not started:
                    started = True
                    await worker.start_nodes()
                    await send("started", {})
                elif kind == "go":
                    worker.go()
                    # What start-up made (modules, graph, models) lives on: keep it out of the
                    # collector's generations, so its pauses on the data path stay short.
                    gc.freeze()
                elif kind == "stop":
                    break
            if time.monotonic() >= heartbeat_at:
                heartbeat_at = time.monotonic() + _HEARTBEAT_S
                await send("stats", worker.snapshot())
            if started and worker.done_event.is_set():
                await send("done", {})
                worker.done_event.clear()
    except EdgeloopError as exc:
        log.error("%s", exc)
        exit_code = 3
    finally:
        await worker.stop()
        if worker.failed_nodes:
            exit_code = exit_code or 1
        try:
            await send("bye", {"stats": worker.snapshot(), "code": exit_code})
        except zmq.ZMQError:
            pass
        worker.close()
        ctl.close(linger=200)
        zctx.term()
        if _process_is_ours:
            # A worker process: everything is said and closed. Exit now rather than through asyncio's
            # teardown, which waits for every thread a node left in the default executor.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exit_code)
    return exit_code


def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _wait_for_activation(plan: WorkerPlan, plan_path: str) -> tuple[WorkerPlan, Graph] | None:
    """A standby worker: load everything a start needs, say so (PLAN.ready), then wait on stdin for
    the launcher's word: one JSON line, {"incarnation": N, "wiring": {...}}; end of input means "not needed"."""
    graph = load_graph(plan.graph_file, plan.overrides, text=plan.graph_text)  # imports every node class
    Path(plan_path + ".ready").touch()
    line = sys.stdin.readline()
    if not line.strip():
        return None
    word = json.loads(line)
    plan.incarnation = int(word["incarnation"])
    plan.wiring = word.get("wiring", plan.wiring)
    return plan, graph


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.worker [--standby] PLAN_JSON_FILE`: run one agent until told to stop.

    With `--standby`, start as a warm spare that becomes the agent when the launcher says so."""
    args = sys.argv[1:] if argv is None else argv
    standby = args[0] == "--standby"
    with open(args[-1], encoding="utf-8") as f:
        plan = WorkerPlan.from_json(f.read())
    os.environ.update(plan.env)
    setup_logging(plan.agent)
    parent = int(os.environ.get("EDGELOOP_PARENT_PID", "0"))
    if parent:
        # A node that blocks the event loop must not outlive its launcher: watch from a thread too.
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="parent-watch").start()
    global _process_is_ours
    _process_is_ours = True
    graph = None
    if standby:
        activated = _wait_for_activation(plan, args[-1])
        if activated is None:
            os._exit(0)
        plan, graph = activated
    code = asyncio.run(_serve(plan, graph))
    # Everything is said and closed: skip the interpreter's teardown (seconds with torch loaded), so the
    # launcher's stop grace measures the graph, not atexit handlers.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
