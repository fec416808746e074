"""Launcher and supervisor: one worker per agent (here, or deployed to other hosts), control, restarts, stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import zmq
import zmq.asyncio

from .errors import GraphError
from .graph import Graph, load_graph
from .observe import start_metrics_server, write_run_file
from .security import KEYS_DIR_ENV, CurveServerAuth, check_keys, configure_curve_server, default_keys_dir
from .stats import merge_snapshots
from .wiring import LAUNCHER_KEY, Wiring, can_bind, local_address_towards, plan_wiring, remote_agents
from .worker import WorkerPlan

if TYPE_CHECKING:
    from .remote import RemoteAgents

__all__ = ["Launcher", "RunResult", "run_graph"]

log = logging.getLogger("edgeloop.launcher")


@dataclass
class RunResult:
    """What a run ended with: exit code (0 ok, 1 a node or agent failed), merged stats, duration."""

    exit_code: int
    view: dict[str, Any]
    duration_s: float
    restarts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class _AgentProc:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    state: str = "spawned"  # spawned | bound | ready | running | done | exited
    bye: bool = False
    restarts: int = 0
    restart_times: list[float] = field(default_factory=list)
    restart_at: float | None = None
    spawned_at: float = 0.0
    remote: bool = False  # deployed through the broker to the `edgeloop agent` of the same name
    exit_code: int | None = None  # a remote worker's, from its daemon or its "bye"
    reason: str = ""
    last_msg: float = 0.0  # monotonic time of its last control message (stats every 0.5 s)
    remote_exit: tuple[int | None, str] | None = None
    spare: subprocess.Popen[bytes] | None = None  # a warm standby worker (`standby: true`)
    spare_failed: bool = False


class Launcher:
    """Runs a validated graph across processes and supervises it.

    Use `await launcher.run(duration_s)` from async code; `launcher.agents[name].proc.pid` is there
    for fault-injection tests, and `launcher.started` is set once every agent passed the ready barrier.

    Agents whose `host` is another machine are deployed through an MQTT broker (`broker_url`, or an
    embedded amqtt on `advertise:broker_port`) to `edgeloop agent --name AGENT` daemons there; data
    and control then run over tcp with CURVE, keys from `keys_dir` (see README "Machines").
    """

    def __init__(self, graph: Graph, *, overrides: list[str] | None = None, transport: str = "auto",
                 env: dict[str, str] | None = None, startup_timeout_s: float = 60.0, stop_grace_s: float = 0.8,
                 stats_path: str | None = None, metrics_port: int | None = None, broker_url: str | None = None,
                 keys_dir: str | Path | None = None, advertise: str | None = None, fleet: str = "default",
                 broker_port: int | None = None, remote_silence_s: float = 10.0) -> None:
        self.graph = graph
        self.overrides = overrides or []
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
        self.remote_silence_s = remote_silence_s
        self.remote: RemoteAgents | None = None
        self.env = env or {}
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.stats_path = stats_path
        self.agents = {name: _AgentProc(name, remote=name in remote) for name in graph.agents}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.started = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.kill_requested = False
        self.on_stats: Any = None
        self.on_finish: Any = None
        self.metrics_port = metrics_port
        self.run_file: Path | None = None
        self._telemetry: zmq.asyncio.Socket | None = None
        self._last_publish = 0.0
        self._fleet_prev: dict[str, tuple[int, float]] = {}
        self._running_since = float("inf")

    # ----- processes -----
    def _spawn(self, a: _AgentProc) -> None:
        if a.remote:
            from .remote import PLAN_ENV

            env = {k: v for k, v in self.env.items() if k in PLAN_ENV}  # nothing else of ours leaves this host
            plan = WorkerPlan(a.name, "", self.graph.filename, self.overrides, self.wiring.to_dict(),
                              a.incarnation, "", env)
            a.state, a.bye, a.spawned_at, a.last_msg, a.remote_exit = "spawned", False, time.monotonic(), 0.0, None
            if self.remote is not None:
                self.remote.deploy(a.name, dict(plan.__dict__), self.graph.source_text, a.incarnation)
            return
        a.proc = self._start_local(a, str(a.incarnation))
        a.state, a.bye, a.spawned_at = "spawned", False, time.monotonic()

    def _start_local(self, a: _AgentProc, tag: str, *, standby: bool = False) -> subprocess.Popen[bytes]:
        plan = WorkerPlan(a.name, self.graph.source_text, self.graph.filename, self.overrides,
                          self.wiring.to_dict(), a.incarnation, str(self.run_dir), self.env)
        path = self._plan_path(a, tag)
        path.write_text(plan.to_json())
        env = {**os.environ, **self.env, **self._worker_env(), "EDGELOOP_PARENT_PID": str(os.getpid())}
        cmd = [sys.executable, "-m", "runtime.worker", *(["--standby"] if standby else []), str(path)]
        # Own session: a terminal Ctrl-C reaches only the launcher, which stops the workers in order.
        return subprocess.Popen(cmd, env=env, start_new_session=True,
                                stdin=subprocess.PIPE if standby else None)

    def _keep_spare(self, a: _AgentProc) -> None:
        """`standby: true`: once the agent runs, a spare waits with Python started and the graph loaded.

        Spares load one at a time, starting a second after the graph runs: several interpreters
        importing at once would take the cores from the running agents."""
        if a.remote or not self.graph.agents[a.name].standby or a.state != "running" or a.spare_failed:
            return
        if a.spare is not None:
            if a.spare.poll() is None:
                return
            # A spare that exits before it is needed could not load the graph: its log says why.
            # Restarts then start a fresh worker, as without standby; no more spares for this agent.
            log.warning("agent '%s': its standby worker exited (code %s); restarts will start a new "
                        "process instead", a.name, a.spare.returncode)
            a.spare, a.spare_failed = None, True
            return
        if time.monotonic() - self._running_since < 1.0 or any(
                x.spare is not None and x.spare.poll() is None and not self._spare_ready(x)
                for x in self.agents.values()):
            return
        self._spare_ready_path(a).unlink(missing_ok=True)
        a.spare = self._start_local(a, "standby", standby=True)

    def _plan_path(self, a: _AgentProc, tag: str) -> Path:
        return self.run_dir / f"plan-{a.name}-{tag}.json"

    def _spare_ready_path(self, a: _AgentProc) -> Path:
        """Written by a standby worker once it has loaded the graph (`runtime.worker --standby`)."""
        return self._plan_path(a, "standby").with_suffix(".json.ready")

    def _spare_ready(self, a: _AgentProc) -> bool:
        return self._spare_ready_path(a).exists()

    def _activate_spare(self, a: _AgentProc) -> bool:
        """Make the spare the agent's next incarnation (the restart then skips start-up); False if none."""
        spare, a.spare = a.spare, None
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return False
        try:
            spare.stdin.write(json.dumps({"incarnation": a.incarnation, "wiring": self.wiring.to_dict()})
                              .encode() + b"\n")
            spare.stdin.close()
        except OSError:
            spare.kill()
            return False
        a.proc = spare
        a.state, a.bye, a.spawned_at = "spawned", False, time.monotonic()
        return True

    def _drop_spares(self) -> None:
        for a in self.agents.values():
            if a.spare is not None:
                if a.spare.poll() is None:
                    a.spare.kill()
                a.spare.wait()
                a.spare = None

    def _worker_env(self) -> dict[str, str]:
        env = {KEYS_DIR_ENV: str(self.keys_dir)} if self.wiring.curve else {}
        if self.remote is not None and self.remote.broker_url:
            env["EDGELOOP_BROKER_URL"] = self.remote.broker_url  # for mqtt.* nodes without a url
        return env

    def _on_remote_exit(self, name: str, incarnation: int | None, code: int | None, reason: str) -> None:
        """From the fleet: a remote worker (this incarnation, or whichever runs if None) is gone."""
        a = self.agents.get(name)
        if a is None or not a.remote or a.state == "exited" or a.remote_exit is not None:
            return
        if incarnation is not None and incarnation != a.incarnation:
            return
        a.remote_exit = (code, reason)

    def _remote_down(self, a: _AgentProc, now: float) -> tuple[int | None, str] | None:
        """Why a remote worker counts as exited now, or None while it looks alive."""
        if a.remote_exit is not None:
            return a.remote_exit
        if a.state == "spawned":
            if self.started.is_set() and now - a.spawned_at > self.startup_timeout_s:
                return None, f"not started within {self.startup_timeout_s:.0f} s of its deploy"
            return None
        silent = now - a.last_msg
        daemon = self.remote.state(a.name) if self.remote is not None else "unknown"
        # Statistics come every 0.5 s: a long silence is a dead, frozen or cut-off worker; a stale or
        # offline daemon (its host is gone or cut off) shortens the wait.
        if silent > self.remote_silence_s or (silent > 2.0 and daemon in ("stale", "offline")):
            return None, f"no statistics for {silent:.1f} s (its daemon is {daemon})"
        return None

    def _fleet_telemetry(self) -> dict[str, Any]:
        """Per-agent rates, drops and health for the broker (~2 Hz); counts only, no NaN (JSON)."""
        now = time.monotonic()
        agents: dict[str, Any] = {}
        for a in self.agents.values():
            snap = self.snapshots.get(a.name, {})
            edges = snap.get("edges", {}).values()
            received = int(sum(e.get("received", 0) for e in edges))
            prev = self._fleet_prev.get(a.name)
            rate = (received - prev[0]) / (now - prev[1]) if prev is not None and now > prev[1] else 0.0
            self._fleet_prev[a.name] = (received, now)
            failed = sorted(n for n, v in snap.get("nodes", {}).items() if v.get("state") == "failed")
            agents[a.name] = {
                "state": a.state, "remote": a.remote, "incarnation": a.incarnation, "restarts": a.restarts,
                "received": received, "dropped": int(sum(e.get("dropped", 0) for e in edges)),
                "rate_hz": round(rate, 3), "cpu_s": round(float(snap.get("cpu_s", 0.0)), 3),
                "rss": int(snap.get("rss", 0)), "failed_nodes": failed,
                "healthy": a.state in ("running", "done") and not failed}
        return {"graph": self.graph.spec.name, "agents": agents, "failures": len(self.failures)}

    async def _send(self, sock: zmq.asyncio.Socket, agent: str, kind: str, **body: Any) -> None:
        await sock.send_multipart([agent.encode(), msgpack.packb({"t": kind, **body})])

    def _maybe_restart(self, a: _AgentProc, code: int | None) -> bool:
        pol = self.graph.agents[a.name].restart
        if pol.policy == "never" or (pol.policy == "on-failure" and code == 0):
            return False
        now = time.monotonic()
        a.restart_times = [t for t in a.restart_times if now - t < pol.window_s]
        if len(a.restart_times) >= pol.max_restarts:
            self.failures.append(f"agent '{a.name}': gave up after {pol.max_restarts} restarts in {pol.window_s} s")
            return False
        delay = min(pol.backoff_ms * 2 ** len(a.restart_times), pol.backoff_max_ms) / 1000.0
        a.restart_times.append(now)
        a.restart_at = now + delay
        log.warning("agent '%s' exited (code %s); restarting in %.0f ms", a.name, code, delay * 1000)
        return True

    # ----- main loop -----
    def _check_keys(self) -> None:
        if not self.wiring.curve:
            return
        local = [n for n, a in self.agents.items() if not a.remote]
        own = local + ([LAUNCHER_KEY] if self.wiring.control.startswith("tcp://") else [])
        check_keys(self.keys_dir, own, list(self.wiring.remote))

    def _bind_control(self, ctl: zmq.asyncio.Socket) -> CurveServerAuth | None:
        """The control ROUTER: ipc on one host; tcp + CURVE (the launcher's key pair) when agents run elsewhere."""
        ctl.setsockopt(zmq.LINGER, 0)
        ctl.setsockopt(zmq.ROUTER_MANDATORY, 1)
        ctl.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted worker takes its name over from a dead link
        auth = None
        if self.wiring.control.startswith("tcp://"):
            ctl.setsockopt(zmq.HEARTBEAT_IVL, 1000)
            ctl.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
            if self.wiring.curve:
                auth = configure_curve_server(ctl, self.keys_dir / f"{LAUNCHER_KEY}.key_secret", self.keys_dir)
        ctl.bind(self.wiring.bind.get(self.wiring.control, self.wiring.control))
        return auth

    async def _start_fleet(self) -> None:
        if not self.wiring.remote and self.broker_url is None:
            return  # everything on this host: no broker, no MQTT at all
        from .remote import EMBEDDED_BROKER_PORT, RemoteAgents

        adv = self.advertise or "127.0.0.1"
        self.remote = RemoteAgents(
            list(self.wiring.remote), self._on_remote_exit, broker_url=self.broker_url, fleet=self.fleet,
            advertise=adv, bind_host=adv if can_bind(adv) else "0.0.0.0",
            embedded_port=EMBEDDED_BROKER_PORT if self.broker_port is None else self.broker_port,
            deploy_timeout_s=max(5.0, self.startup_timeout_s - 5.0))  # its reason beats the generic timeout
        await self.remote.start(self._fleet_telemetry)

    def _tool_wiring(self) -> Wiring:
        """What tools on this host may use: remote agents' taps are CURVE servers elsewhere, so they are left out."""
        w = Wiring.from_dict(self.wiring.to_dict())
        for name in w.remote:
            w.tap.pop(name, None)
        return w

    async def run(self, duration_s: float | None = None) -> RunResult:
        zctx = zmq.asyncio.Context()
        ctl = zctx.socket(zmq.ROUTER)
        self._telemetry = zctx.socket(zmq.PUB)
        auth: CurveServerAuth | None = None
        exporter: Any = None
        stopped = False
        t_start = time.monotonic()
        t_running: float | None = None
        try:
            self._check_keys()
            auth = self._bind_control(ctl)
            self._telemetry.setsockopt(zmq.LINGER, 0)
            self._telemetry.setsockopt(zmq.SNDHWM, 10)
            self._telemetry.bind(self.wiring.telemetry)
            self.run_file = write_run_file(self.graph, self._tool_wiring())
            exporter = start_metrics_server(self.metrics_port, lambda: merge_snapshots(self.snapshots)) \
                if self.metrics_port else None
            await self._start_fleet()
            t_start = time.monotonic()
            for a in self.agents.values():
                self._spawn(a)
            while True:
                now = time.monotonic()
                if self.stop_requested.is_set():
                    break
                if t_running is not None and duration_s is not None and now - t_running >= duration_s:
                    break
                if t_running is None and now - t_start > self.startup_timeout_s:
                    raise GraphError(f"agents did not become ready within {self.startup_timeout_s:.0f} s: " +
                                     ", ".join(f"{a.name}={a.state}" for a in self.agents.values()))
                await self._poll_control(ctl, 0.05)
                for a in self.agents.values():
                    await self._supervise(a, ctl)
                if t_running is None and all(a.state in ("running", "done") for a in self.agents.values()):
                    t_running = self._running_since = time.monotonic()
                    self.started.set()
                if t_running is None:
                    for a in self.agents.values():
                        if a.state == "exited" and a.restart_at is None:
                            if a.remote:
                                raise GraphError(f"agent '{a.name}' (on {self.graph.agents[a.name].host}) "
                                                 f"exited during start-up: {a.reason}")
                            raise GraphError(f"agent '{a.name}' exited during start-up (code "
                                             f"{a.proc.returncode if a.proc else '?'}); its log above says why")
                live = [a for a in self.agents.values() if a.state != "exited" or a.restart_at is not None]
                if t_running is not None and (not live or all(a.state == "done" for a in live)):
                    break
            stopped = True
            return await self._stop(ctl, t_running or time.monotonic())
        finally:
            self._drop_spares()
            for a in self.agents.values():
                if a.proc is not None and a.proc.poll() is None:
                    a.proc.kill()
                    a.proc.wait()
            if self.remote is not None:
                if not stopped:  # start-up failed or was cancelled: leave nothing running elsewhere
                    await self.remote.stop_parts(list(self.wiring.remote), timeout_s=3.0)
                await self.remote.close()
            if exporter is not None:
                exporter.shutdown()
            if self.run_file is not None:
                self.run_file.unlink(missing_ok=True)
            self._telemetry.close(linger=0)
            ctl.close(linger=0)
            if auth is not None:
                auth.close()
            zctx.term()
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def _poll_control(self, ctl: zmq.asyncio.Socket, timeout_s: float) -> None:
        if not await ctl.poll(int(timeout_s * 1000)):
            return
        for _ in range(10_000):  # drain what has arrived, bounded
            ident, raw = await ctl.recv_multipart()
            try:
                msg = msgpack.unpackb(raw, raw=False)
            except Exception:  # a malformed control message is dropped, never fatal
                continue
            if isinstance(msg, dict):
                await self._on_control(ctl, ident.decode(errors="replace"), msg)
            if not await ctl.poll(0):
                return

    async def _on_control(self, ctl: zmq.asyncio.Socket, name: str, m: dict[str, Any]) -> None:
        a = self.agents.get(name)
        if a is None or m.get("inc") != a.incarnation or (a.remote and a.state == "exited"):
            return  # a message from an older incarnation, or from a remote one already given up on
        a.last_msg = time.monotonic()
        kind = m.get("t")
        if kind == "bound":
            a.state = "bound"
            moved = m.get("endpoints")
            for old, new in (moved.items() if isinstance(moved, dict) else ()):
                if isinstance(old, str) and isinstance(new, str):
                    self.wiring.rebind(old, new)  # its host had the proposed port taken
            if all(x.state != "spawned" for x in self.agents.values()) or self.started.is_set():
                for x in self.agents.values():
                    if x.state == "bound":
                        await self._send(ctl, x.name, "connect", wiring=self.wiring.to_dict())
        elif kind == "ready":
            a.state = "ready"
            await self._send(ctl, name, "start")
        elif kind == "started":
            # Sources and timers start only once every agent's nodes are set up (or at once after a restart).
            a.state = "started"
            if self.started.is_set():
                await self._send(ctl, name, "go")
                a.state = "running"
            elif all(x.state == "started" for x in self.agents.values()):
                for x in self.agents.values():
                    await self._send(ctl, x.name, "go")
                    x.state = "running"
        elif kind == "stats":
            self.snapshots[name] = m
            view = merge_snapshots(self.snapshots)
            if self.on_stats is not None:
                self.on_stats(view)
            now = time.monotonic()
            if self._telemetry is not None and now - self._last_publish >= 0.25:
                self._last_publish = now
                view["graph"] = self.graph.spec.name
                view["restarts"] = {a.name: a.restarts for a in self.agents.values()}
                view["failures"] = self.failures[-20:]
                await self._telemetry.send_multipart([b"stats", msgpack.packb(view, default=str)])
        elif kind == "node_failed":
            self.failures.append(f"node '{m['node']}' ({name}): {m.get('error', '')}")
        elif kind == "done":
            a.state = "done"
        elif kind == "bye":
            a.bye = True
            a.exit_code = m.get("code") if isinstance(m.get("code"), int) else a.exit_code
            if a.remote and not self.stop_requested.is_set() and a.remote_exit is None:
                # Workers stop only when asked; unasked, its daemon is stopping or gone: a failure to recover.
                a.remote_exit = (None, f"its worker stopped without being asked (code {a.exit_code})")
            self.snapshots[name] = m.get("stats", self.snapshots.get(name, {}))

    async def _supervise(self, a: _AgentProc, ctl: zmq.asyncio.Socket) -> None:
        if a.remote and a.state != "exited":
            down = self._remote_down(a, time.monotonic())
            if down is not None:
                a.state, (a.exit_code, a.reason) = "exited", down
                if not self.stop_requested.is_set():
                    self.failures.append(f"agent '{a.name}' exited unexpectedly ({a.reason})")
                    self._maybe_restart(a, a.exit_code)
        elif a.proc is not None and a.state != "exited":
            code = a.proc.poll()
            if code is not None:
                a.state = "exited"
                if not self.stop_requested.is_set():
                    self.failures.append(f"agent '{a.name}' exited unexpectedly (code {code})")
                    self._maybe_restart(a, code)
        if a.restart_at is not None and time.monotonic() >= a.restart_at and not self.stop_requested.is_set():
            a.restart_at = None
            a.incarnation += 1
            a.restarts += 1
            if not self._activate_spare(a):
                self._spawn(a)
        elif self.started.is_set() and not self.stop_requested.is_set():
            self._keep_spare(a)

    async def _stop(self, ctl: zmq.asyncio.Socket, t_running: float) -> RunResult:
        duration = time.monotonic() - t_running
        self._drop_spares()
        if self.on_finish is not None:
            self.on_finish()
        remote = [a for a in self.agents.values() if a.remote]
        # A remote worker's "bye" crosses the network: one more second of grace for it.
        deadline = time.monotonic() + self.stop_grace_s + (1.0 if remote else 0.0)
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
                try:
                    await self._send(ctl, a.name, "stop")
                except zmq.ZMQError:
                    a.proc.terminate()
            elif a.remote and a.state not in ("spawned", "exited"):
                try:
                    await self._send(ctl, a.name, "stop")
                except zmq.ZMQError:
                    pass  # no link to it any more: its daemon stops it below
        while time.monotonic() < deadline and not self.kill_requested:
            if all(a.proc is None or a.proc.poll() is not None for a in self.agents.values()) and \
                    all(a.bye or a.state in ("spawned", "exited") for a in remote):
                break
            await self._poll_control(ctl, 0.02)
        await self._poll_control(ctl, 0.0)
        if self.remote is not None:
            late = [a.name for a in remote if not a.bye and a.state not in ("spawned", "exited")]
            for name in late:
                log.warning("agent '%s' did not stop in time: stopping it through its daemon", name)
                self.failures.append(f"agent '{name}' stopped through its daemon at stop")
            # Parts still being deployed, and late ones: the daemon stops them (SIGTERM, then SIGKILL).
            pending = late + [a.name for a in remote if a.state == "spawned"]
            for name, err in (await self.remote.stop_parts(pending, timeout_s=5.0)).items():
                self.failures.append(f"agent '{name}': stop through its daemon failed: {err}")
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
                if a.bye and not self.kill_requested:
                    # It said goodbye (statistics sent, sockets closed) and is only exiting: a short
                    # wait, then a kill that loses nothing.
                    try:
                        a.proc.wait(timeout=0.5)
                        continue
                    except subprocess.TimeoutExpired:
                        log.info("agent '%s' said goodbye but had not exited: killed", a.name)
                        a.proc.kill()
                        continue
                log.warning("agent '%s' did not stop in time: killed", a.name)
                a.proc.kill()
                self.failures.append(f"agent '{a.name}' killed at stop")
        for a in self.agents.values():
            if a.proc is not None:
                try:
                    a.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        view = merge_snapshots(self.snapshots)
        failed_nodes = [n for n, v in view["nodes"].items() if v.get("state") == "failed"]
        gave_up = [f for f in self.failures if "gave up" in f]
        dead = [a.name for a in self.agents.values()
                if (a.proc is not None and a.proc.returncode not in (0, None) and not a.bye
                    or a.remote and a.state == "exited")  # a remote one is "exited" only if it died unasked
                and a.restart_at is None and self.graph.agents[a.name].restart.policy == "never"]
        code = 1 if (failed_nodes or gave_up or dead) else 0
        return RunResult(code, view, duration, {a.name: a.restarts for a in self.agents.values()}, self.failures)


def run_graph(path: str | Path, *, duration_s: float | None = None, overrides: list[str] | None = None,
              transport: str = "auto", graph: Graph | None = None, top: bool = False,
              metrics_port: int | None = None, broker_url: str | None = None, keys_dir: str | Path | None = None,
              advertise: str | None = None, fleet: str = "default", broker_port: int | None = None, restore_signals: bool = True) -> RunResult:
    """Run a graph file until it finishes, `duration_s` passes, or Ctrl-C / SIGTERM (a second Ctrl-C kills)."""
    graph = graph or load_graph(path, overrides)

    holder: dict[str, Any] = {}

    def on_signal() -> None:
        launcher: Launcher | None = holder.get("launcher")
        if launcher is None:
            return
        if launcher.stop_requested.is_set():  # a second Ctrl-C: kill now
            launcher.kill_requested = True
            for a in launcher.agents.values():
                if a.proc is not None and a.proc.poll() is None:
                    a.proc.kill()
                    launcher.failures.append(f"agent '{a.name}' killed (second Ctrl-C)")
        launcher.stop_requested.set()

    def handler(signum: int, frame: Any) -> None:
        loop = holder.get("loop")
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(on_signal)

    async def main() -> RunResult:
        launcher = Launcher(graph, overrides=overrides, transport=transport, metrics_port=metrics_port,
                            broker_url=broker_url, keys_dir=keys_dir, advertise=advertise, fleet=fleet,
                            broker_port=broker_port)
        holder["launcher"], holder["loop"] = launcher, asyncio.get_running_loop()
        if top:
            _attach_live_top(launcher)
        return await launcher.run(duration_s)

    # Plain signal handlers, installed before the loop and kept until the result is back, so a Ctrl-C
    # at any moment means "stop" (then "kill"), never a KeyboardInterrupt that loses the summary.
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return asyncio.run(main())
    finally:
        # The handler left in place (restore_signals=False) does nothing once the loop is closed.
        if restore_signals:
            for sig, h in previous.items():
                signal.signal(sig, h)


def _attach_live_top(launcher: Launcher) -> None:
    """`edgeloop run --top`: the same live view as `edgeloop top`, in this terminal."""
    from rich.live import Live

    from .observe import render_top

    live = Live(refresh_per_second=4)
    state: dict[str, Any] = {"prev": None, "t": time.monotonic(), "started": False}

    def on_stats(view: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - state["t"] < 1.0 and state["prev"] is not None:
            return
        if not state["started"]:
            live.start()
            state["started"] = True
        live.update(render_top({**view, "graph": launcher.graph.spec.name}, state["prev"], now - state["t"]))
        state["prev"], state["t"] = view, now

    launcher.on_stats = on_stats
    launcher.on_finish = lambda: live.stop() if state["started"] else None
