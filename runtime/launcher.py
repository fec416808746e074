"""Launcher and supervisor: one worker process per agent, a control channel, a ready barrier, restarts, stop ≤ 1 s."""

from __future__ import annotations

import asyncio
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
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from .errors import GraphError
from .graph import Graph, load_graph
from .observe import start_metrics_server, write_run_file
from .stats import merge_snapshots
from .wiring import plan_wiring
from .worker import WorkerPlan

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


class Launcher:
    """Runs a validated graph across processes and supervises it.

    Use `await launcher.run(duration_s)` from async code; `launcher.agents[name].proc.pid` is there
    for fault-injection tests, and `launcher.started` is set once every agent passed the ready barrier.
    """

    def __init__(self, graph: Graph, *, overrides: list[str] | None = None, transport: str = "auto",
                 env: dict[str, str] | None = None, startup_timeout_s: float = 60.0, stop_grace_s: float = 0.8,
                 stats_path: str | None = None, metrics_port: int | None = None) -> None:
        self.graph = graph
        self.overrides = overrides or []
        self.run_dir = Path(tempfile.mkdtemp(prefix="edgeloop-"))
        os.chmod(self.run_dir, 0o700)  # ipc sockets live here: only this user may connect
        self.wiring = plan_wiring(graph, self.run_dir, transport=transport)
        self.env = env or {}
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.stats_path = stats_path
        self.agents = {name: _AgentProc(name) for name in graph.agents}
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

    # ----- processes -----
    def _spawn(self, a: _AgentProc) -> None:
        plan = WorkerPlan(a.name, self.graph.source_text, self.graph.filename, self.overrides,
                          self.wiring.to_dict(), a.incarnation, str(self.run_dir), self.env)
        path = self.run_dir / f"plan-{a.name}-{a.incarnation}.json"
        path.write_text(plan.to_json())
        env = {**os.environ, **self.env, "EDGELOOP_PARENT_PID": str(os.getpid())}
        # Own session: a terminal Ctrl-C reaches only the launcher, which stops the workers in order.
        a.proc = subprocess.Popen([sys.executable, "-m", "runtime.worker", str(path)], env=env,
                                  start_new_session=True)
        a.state, a.bye, a.spawned_at = "spawned", False, time.monotonic()

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
    async def run(self, duration_s: float | None = None) -> RunResult:
        zctx = zmq.asyncio.Context()
        ctl = zctx.socket(zmq.ROUTER)
        ctl.setsockopt(zmq.LINGER, 0)
        ctl.setsockopt(zmq.ROUTER_MANDATORY, 1)
        ctl.bind(self.wiring.control)
        self._telemetry = zctx.socket(zmq.PUB)
        self._telemetry.setsockopt(zmq.LINGER, 0)
        self._telemetry.setsockopt(zmq.SNDHWM, 10)
        self._telemetry.bind(self.wiring.telemetry)
        self.run_file = write_run_file(self.graph, self.wiring)
        exporter = start_metrics_server(self.metrics_port, lambda: merge_snapshots(self.snapshots)) \
            if self.metrics_port else None
        t_start = time.monotonic()
        t_running: float | None = None
        try:
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
                    t_running = time.monotonic()
                    self.started.set()
                if t_running is None:
                    for a in self.agents.values():
                        if a.state == "exited" and a.restart_at is None:
                            raise GraphError(f"agent '{a.name}' exited during start-up (code "
                                             f"{a.proc.returncode if a.proc else '?'}); its log above says why")
                live = [a for a in self.agents.values() if a.state != "exited" or a.restart_at is not None]
                if t_running is not None and (not live or all(a.state == "done" for a in live)):
                    break
            return await self._stop(ctl, t_running or time.monotonic())
        finally:
            for a in self.agents.values():
                if a.proc is not None and a.proc.poll() is None:
                    a.proc.kill()
                    a.proc.wait()
            if exporter is not None:
                exporter.shutdown()
            if self.run_file is not None:
                self.run_file.unlink(missing_ok=True)
            self._telemetry.close(linger=0)
            ctl.close(linger=0)
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
        if a is None or m.get("inc") != a.incarnation:
            return  # a message from an older incarnation
        kind = m.get("t")
        if kind == "bound":
            a.state = "bound"
            if all(x.state != "spawned" for x in self.agents.values()) or self.started.is_set():
                for x in self.agents.values():
                    if x.state == "bound":
                        await self._send(ctl, x.name, "connect")
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
            self.snapshots[name] = m.get("stats", self.snapshots.get(name, {}))

    async def _supervise(self, a: _AgentProc, ctl: zmq.asyncio.Socket) -> None:
        if a.proc is not None and a.state != "exited":
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
            self._spawn(a)

    async def _stop(self, ctl: zmq.asyncio.Socket, t_running: float) -> RunResult:
        duration = time.monotonic() - t_running
        if self.on_finish is not None:
            self.on_finish()
        deadline = time.monotonic() + self.stop_grace_s
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
                try:
                    await self._send(ctl, a.name, "stop")
                except zmq.ZMQError:
                    a.proc.terminate()
        while time.monotonic() < deadline and not self.kill_requested:
            if all(a.proc is None or a.proc.poll() is not None for a in self.agents.values()):
                break
            await self._poll_control(ctl, 0.02)
        await self._poll_control(ctl, 0.0)
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
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
                if a.proc is not None and a.proc.returncode not in (0, None) and not a.bye and a.restart_at is None
                and self.graph.agents[a.name].restart.policy == "never"]
        code = 1 if (failed_nodes or gave_up or dead) else 0
        return RunResult(code, view, duration, {a.name: a.restarts for a in self.agents.values()}, self.failures)


def run_graph(path: str | Path, *, duration_s: float | None = None, overrides: list[str] | None = None,
              transport: str = "auto", graph: Graph | None = None, top: bool = False,
              metrics_port: int | None = None) -> RunResult:
    """Run a graph file until it finishes, `duration_s` passes, or Ctrl-C / SIGTERM (a second Ctrl-C kills)."""
    graph = graph or load_graph(path, overrides)

    async def main() -> RunResult:
        launcher = Launcher(graph, overrides=overrides, transport=transport, metrics_port=metrics_port)
        loop = asyncio.get_running_loop()
        if top:
            _attach_live_top(launcher)

        def on_signal() -> None:
            if launcher.stop_requested.is_set():
                launcher.kill_requested = True
                for a in launcher.agents.values():
                    if a.proc is not None and a.proc.poll() is None:
                        a.proc.kill()
            launcher.stop_requested.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        return await launcher.run(duration_s)

    return asyncio.run(main())


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
