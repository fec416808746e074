"""The launcher: runs a graph's agents (here, or deployed to other hosts) through start-up, supervision and stop."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from .barrier import StartBarrier
from .control import Bound, Bye, Done, NodeFailed, Ready, Started, Stats, Stop, WorkerMessage
from .errors import GraphError
from .graph import Graph
from .node import BackendSetting
from .security import check_keys, default_keys_dir
from .spawner import Spawner
from .stats import merge_snapshots
from .supervision import AgentProc, AgentState, Failure, FailureKind, Supervisor
from .switchboard import Switchboard
from .telemetry import StatsPublisher, fleet_summary
from .wiring import LAUNCHER_KEY, can_bind, local_address_towards, plan_wiring, remote_agents

if TYPE_CHECKING:
    from .remote import RemoteAgents

__all__ = ["Launcher", "RunResult"]

log = logging.getLogger("edgeloop.launcher")


@dataclass
class RunResult:
    """What a run ended with: exit code (0 ok, 1 a node or agent failed), merged stats, duration;
    `failures` as sentences, `failure_records` as typed records."""

    exit_code: int
    view: dict[str, Any]
    duration_s: float
    restarts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    failure_records: list[Failure] = field(default_factory=list)


class Launcher:
    """Runs a validated graph across processes and supervises it.

    Use `await launcher.run(duration_s)` from async code; `launcher.agents[name].proc.pid` is there
    for fault-injection tests, and `launcher.started` is set once every agent passed the ready barrier.
    `on_stats(view)` sees every merged statistics view, `on_control(agent, message)` every control
    message accepted from a worker; `control_dropped` counts control frames dropped as malformed.

    Agents whose `host` is another machine are deployed through an MQTT broker (`broker_url`, or an
    embedded amqtt on `advertise:broker_port`) to `edgeloop agent --name AGENT` daemons there; data
    and control then run over tcp with CURVE, keys from `keys_dir` (see README "Machines").
    """

    def __init__(
        self,
        graph: Graph,
        *,
        overrides: list[str] | None = None,
        transport: str = "auto",
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 60.0,
        stop_grace_s: float = 0.8,
        stats_path: str | None = None,
        metrics_port: int | None = None,
        broker_url: str | None = None,
        keys_dir: str | Path | None = None,
        advertise: str | None = None,
        fleet: str = "default",
        broker_port: int | None = None,
        remote_silence_s: float = 10.0,
        backend: BackendSetting | None = None,
    ) -> None:
        self.graph = graph
        self.overrides = overrides or []
        self.backend = backend
        remote = remote_agents(graph)
        if remote and advertise is None:
            advertise = local_address_towards(str(graph.agents[remote[0]].host))
        self.advertise = advertise
        self.run_dir = Path(tempfile.mkdtemp(prefix="edgeloop-"))
        os.chmod(self.run_dir, 0o700)  # ipc sockets live here: only this user may connect
        try:
            self.wiring = plan_wiring(graph, self.run_dir, transport=transport, advertise=advertise)
        except BaseException:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        self.keys_dir = Path(keys_dir).expanduser() if keys_dir is not None else default_keys_dir()
        self.broker_url = broker_url
        self.broker_port = broker_port
        self.fleet = fleet
        self.remote: RemoteAgents | None = None
        self.env = env or {}
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.stats_path = stats_path
        self.metrics_port = metrics_port
        self.agents = {
            name: AgentProc(name, spec.restart, remote=name in remote) for name, spec in graph.agents.items()
        }
        self.started = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.kill_requested = False
        self.supervisor = Supervisor(
            self.agents,
            self.stop_requested,
            startup_timeout_s=startup_timeout_s,
            remote_silence_s=remote_silence_s,
        )
        self.failures = self.supervisor.failures
        self.switchboard = Switchboard(self.wiring, self.keys_dir)
        self.spawner = Spawner(
            graph,
            self.agents,
            self.wiring,
            self.run_dir,
            overrides=self.overrides,
            env=self.env,
            keys_dir=self.keys_dir,
            switchboard=self.switchboard,
            backend=backend,
        )
        self.barrier = StartBarrier(self.agents, self.wiring, self.started, self.switchboard.send)
        self.publisher = StatsPublisher(graph, metrics_port=metrics_port)
        self.snapshots = self.publisher.snapshots  # the latest of each agent
        self.on_finish: Callable[[], None] | None = None
        self.on_control: Callable[[str, WorkerMessage], None] | None = None
        self._fleet_prev: dict[str, tuple[int, float]] = {}
        self._running_since = float("inf")

    @property
    def on_stats(self) -> Callable[[dict[str, Any]], None] | None:
        """Called with every merged statistics view."""
        return self.publisher.on_stats

    @on_stats.setter
    def on_stats(self, fn: Callable[[dict[str, Any]], None] | None) -> None:
        self.publisher.on_stats = fn

    @property
    def control_dropped(self) -> int:
        """Control frames dropped as malformed (see `Switchboard`)."""
        return self.switchboard.dropped

    # ----- control -----
    async def _on_control(self, name: str, msg: WorkerMessage) -> None:
        a = self.agents.get(name)
        if a is None or msg.incarnation != a.incarnation or (a.remote and a.state is AgentState.EXITED):
            return  # a message from an older incarnation, or from a remote one already given up on
        a.last_msg = time.monotonic()
        if self.on_control is not None:
            self.on_control(name, msg)
        match msg:
            case Bound() | Ready() | Started():
                await self.barrier.step(a, msg)
            case Stats(snapshot=snapshot):
                await self.publisher.update(
                    name, dict(snapshot), {x.name: x.restarts for x in self.agents.values()}, self.failures
                )
            case NodeFailed(node=node, hook=hook, error=error):
                self.failures.append(Failure(FailureKind.NODE_FAILED, name, error, node))
                if hook == "setup" and not self.stop_requested.is_set():
                    # A node that cannot even start (a bad model file, a camera that is not there) makes
                    # the graph something other than what was asked for: stop instead of running half of it.
                    log.error("node '%s' could not be set up (%s): stopping the run", node, error)
                    self.stop_requested.set()
            case Done():
                a.state = AgentState.DONE
            case Bye(code=code, snapshot=snapshot):
                a.bye, a.exit_code = True, code
                if a.remote and not self.stop_requested.is_set() and a.remote_exit is None:
                    # Workers stop only when asked; unasked, its daemon is stopping or gone: a failure to recover.
                    a.remote_exit = (None, f"its worker stopped without being asked (code {a.exit_code})")
                self.snapshots[name] = dict(snapshot)

    # ----- supervision -----
    def _supervise(self, a: AgentProc) -> None:
        now = time.monotonic()
        if a.remote and a.state is not AgentState.EXITED:
            daemon = self.remote.state(a.name) if self.remote is not None else "unknown"
            down = self.supervisor.remote_down(a, now, started=self.started.is_set(), daemon=daemon)
            if down is not None:
                a.exit_code, a.reason = down
                self.supervisor.exited(a, a.exit_code, a.reason, now)
        elif a.proc is not None and a.state is not AgentState.EXITED:
            code = a.proc.poll()
            if code is not None:
                self.supervisor.exited(a, code, f"code {code}", now)
        if self.supervisor.due(a, time.monotonic()):
            self.spawner.restart(a)
        elif self.started.is_set() and not self.stop_requested.is_set():
            self.spawner.spares.keep(a, self._running_since)

    # ----- main loop -----
    def _check_keys(self) -> None:
        if not self.wiring.curve:
            return
        local = [n for n, a in self.agents.items() if not a.remote]
        own = local + ([LAUNCHER_KEY] if self.wiring.control.startswith("tcp://") else [])
        check_keys(self.keys_dir, own, list(self.wiring.remote))

    async def _start_fleet(self) -> None:
        if not self.wiring.remote and self.broker_url is None:
            return  # everything on this host: no broker, no MQTT at all
        from .remote import EMBEDDED_BROKER_PORT, RemoteAgents

        adv = self.advertise or "127.0.0.1"
        self.remote = RemoteAgents(
            list(self.wiring.remote),
            self.supervisor.remote_exit,
            broker_url=self.broker_url,
            fleet=self.fleet,
            advertise=adv,
            bind_host=adv if can_bind(adv) else "0.0.0.0",
            embedded_port=EMBEDDED_BROKER_PORT if self.broker_port is None else self.broker_port,
            deploy_timeout_s=max(5.0, self.startup_timeout_s - 5.0),
        )  # its reason beats the generic timeout
        self.spawner.remote = self.remote
        await self.remote.start(
            lambda: fleet_summary(
                self.graph.spec.name, self.agents, self.snapshots, self._fleet_prev, len(self.failures)
            )
        )

    async def run(self, duration_s: float | None = None) -> RunResult:
        zctx = zmq.asyncio.Context()
        stopped = False
        t_start = time.monotonic()
        t_running: float | None = None
        try:
            self._check_keys()
            self.switchboard.bind(zctx)
            self.publisher.open(zctx, self.wiring)
            await self._start_fleet()
            t_start = time.monotonic()
            for a in self.agents.values():
                self.spawner.spawn(a)
            while True:
                now = time.monotonic()
                if self.stop_requested.is_set():
                    break
                if t_running is not None and duration_s is not None and now - t_running >= duration_s:
                    break
                if t_running is None and now - t_start > self.startup_timeout_s:
                    raise GraphError(
                        f"agents did not become ready within {self.startup_timeout_s:.0f} s: "
                        + ", ".join(f"{a.name}={a.state}" for a in self.agents.values())
                    )
                await self.switchboard.poll(0.05, self._on_control)
                for a in self.agents.values():
                    self._supervise(a)
                if t_running is None and all(
                    a.state in (AgentState.RUNNING, AgentState.DONE) for a in self.agents.values()
                ):
                    t_running = self._running_since = time.monotonic()
                    self.started.set()
                if (
                    t_running is None
                    and (
                        exc := self.supervisor.startup_failure(
                            {n: s.host for n, s in self.graph.agents.items()}
                        )
                    )
                    is not None
                ):
                    raise exc
                live = [
                    a
                    for a in self.agents.values()
                    if a.state is not AgentState.EXITED or a.restart_at is not None
                ]
                if t_running is not None and (not live or all(a.state is AgentState.DONE for a in live)):
                    break
            stopped = True
            return await self._stop(t_running or time.monotonic())
        finally:
            self.spawner.spares.drop()
            self.spawner.kill_all()
            if self.remote is not None:
                if not stopped:  # start-up failed or was cancelled: leave nothing running elsewhere
                    await self.remote.stop_parts(list(self.wiring.remote), timeout_s=3.0)
                await self.remote.close()
            self.publisher.close()
            self.switchboard.close()
            zctx.term()
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def _stop(self, t_running: float) -> RunResult:
        duration = time.monotonic() - t_running
        self.spawner.spares.drop()
        if self.on_finish is not None:
            self.on_finish()
        remote = [a for a in self.agents.values() if a.remote]
        # A remote worker's "bye" crosses the network: one more second of grace for it.
        deadline = time.monotonic() + self.stop_grace_s + (1.0 if remote else 0.0)
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
                try:
                    await self.switchboard.send(a.name, Stop())
                except zmq.ZMQError:
                    a.proc.terminate()
            elif a.remote and a.state not in (AgentState.SPAWNED, AgentState.EXITED):
                try:
                    await self.switchboard.send(a.name, Stop())
                except zmq.ZMQError:
                    pass  # no link to it any more: its daemon stops it below
        while time.monotonic() < deadline and not self.kill_requested:
            if all(a.proc is None or a.proc.poll() is not None for a in self.agents.values()) and all(
                a.bye or a.state in (AgentState.SPAWNED, AgentState.EXITED) for a in remote
            ):
                break
            await self.switchboard.poll(0.02, self._on_control)
        await self.switchboard.poll(0.0, self._on_control)
        if self.remote is not None:
            late = [
                a.name for a in remote if not a.bye and a.state not in (AgentState.SPAWNED, AgentState.EXITED)
            ]
            for name in late:
                log.warning("agent '%s' did not stop in time: stopping it through its daemon", name)
                self.failures.append(Failure(FailureKind.STOPPED_BY_DAEMON, name))
            # Parts still being deployed, and late ones: the daemon stops them (SIGTERM, then SIGKILL).
            pending = late + [a.name for a in remote if a.state is AgentState.SPAWNED]
            for name, err in (await self.remote.stop_parts(pending, timeout_s=5.0)).items():
                self.failures.append(Failure(FailureKind.DAEMON_STOP_FAILED, name, err))
        for name in self.spawner.reap(patient=not self.kill_requested):
            self.failures.append(Failure(FailureKind.KILLED_AT_STOP, name))
        view = merge_snapshots(self.snapshots)
        failed_nodes = [n for n, v in view["nodes"].items() if v.get("state") == "failed"]
        code = self.supervisor.exit_code(failed_nodes)
        return RunResult(
            code,
            view,
            duration,
            {a.name: a.restarts for a in self.agents.values()},
            [f.message for f in self.failures],
            list(self.failures),
        )

    def kill_now(self) -> None:
        """Kill every local worker at once (a second Ctrl-C) and stop."""
        self.kill_requested = True
        for name in self.spawner.kill_all(wait=False):
            self.failures.append(Failure(FailureKind.KILLED_BY_SIGNAL, name))
        self.stop_requested.set()
