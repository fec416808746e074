"""Agents' workers as processes: a local one (`python -m runtime.worker PLAN`), a warm spare taking over, or
a deploy to the agent's daemon on another host; and the local ones reaped at the end."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .graph import Graph
from .node import BackendSetting
from .plan import PLAN_ENV, WORKER_COMMAND, WorkerPlan, worker_pythonpath
from .security import KEYS_DIR_ENV
from .spares import Spares
from .supervision import AgentProc
from .switchboard import Switchboard
from .wiring import Wiring

if TYPE_CHECKING:
    from .remote import RemoteAgents

__all__ = ["Spawner"]

log = logging.getLogger("edgeloop.launcher")
_BYE_EXIT_S = 0.5  # a worker that said goodbye exits within this, or is killed (nothing is lost)
_REAP_S = 2.0


class Spawner:
    """Starts agents' workers with the run's plan: graph, `--set` overrides, wiring, backend override.

    Local workers get `env` on top of this process's environment; remote ones only its `PLAN_ENV`
    part, through `remote` (set once the fleet is joined). Plans are written under `run_dir` (0700)
    and carry the agent's run secret from `switchboard`, which admits each incarnation as it starts.

    Local workers run as `python -P -m runtime.worker`: the current directory is not on their import
    path (a `runtime/` or `numpy.py` there must not run in every worker), while the directory this
    process imported `runtime` from is added to `PYTHONPATH` after the user's own entries.
    """

    def __init__(
        self,
        graph: Graph,
        agents: dict[str, AgentProc],
        wiring: Wiring,
        run_dir: Path,
        *,
        overrides: list[str],
        env: dict[str, str],
        keys_dir: Path,
        switchboard: Switchboard,
        backend: BackendSetting | None = None,
    ) -> None:
        self.graph = graph
        self.agents = agents
        self.wiring = wiring
        self.run_dir = run_dir
        self.overrides = overrides
        self.env = env
        self.keys_dir = keys_dir
        self.backend = backend
        self.switchboard = switchboard
        self.remote: RemoteAgents | None = None
        self.spares = Spares(
            agents,
            {n for n, s in graph.agents.items() if s.standby},
            lambda a: self._start_local(a, "standby", standby=True),
            lambda a: self._plan_path(a, "standby"),
        )

    def spawn(self, a: AgentProc) -> None:
        """Start agent `a`'s current incarnation: a new local process, or a deploy to its daemon."""
        self.switchboard.admit(a.name, a.incarnation)
        if a.remote:
            a.spawned(time.monotonic())
            a.last_msg, a.remote_exit = 0.0, None
            if self.remote is not None:
                env = {
                    k: v for k, v in self.env.items() if k in PLAN_ENV
                }  # nothing else of ours leaves this host
                plan = self._plan(a, "", "", env)
                self.remote.deploy(a.name, plan.to_dict(), self.graph.source_text, a.incarnation)
            return
        a.proc = self._start_local(a, str(a.incarnation))
        a.spawned(time.monotonic())

    def restart(self, a: AgentProc) -> None:
        """Start `a`'s next incarnation: its warm spare if one waits, else as `spawn`."""
        self.switchboard.admit(a.name, a.incarnation)
        if not self.spares.activate(a, self.wiring.to_dict()):
            self.spawn(a)

    def reap(self, *, patient: bool) -> list[str]:
        """Stop what is left of the local workers at the end of a run; returns the agents killed unready.

        With `patient`, a worker that said goodbye (statistics sent, sockets closed) and is only exiting
        gets a short wait, then a kill that loses nothing; any other is killed at once."""
        killed = []
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
                if a.bye and patient:
                    try:
                        a.proc.wait(timeout=_BYE_EXIT_S)
                        continue
                    except subprocess.TimeoutExpired:
                        log.info("agent '%s' said goodbye but had not exited: killed", a.name)
                        a.proc.kill()
                        continue
                log.warning("agent '%s' did not stop in time: killed", a.name)
                a.proc.kill()
                killed.append(a.name)
        for a in self.agents.values():
            if a.proc is not None:
                try:
                    a.proc.wait(timeout=_REAP_S)
                except subprocess.TimeoutExpired:
                    pass
        return killed

    def kill_all(self, *, wait: bool = True) -> list[str]:
        """Kill every local worker still running (and wait for it); returns their agents."""
        killed = []
        for a in self.agents.values():
            if a.proc is not None and a.proc.poll() is None:
                a.proc.kill()
                if wait:
                    a.proc.wait()
                killed.append(a.name)
        return killed

    def _plan(self, a: AgentProc, graph_text: str, run_dir: str, env: dict[str, str]) -> WorkerPlan:
        return WorkerPlan(
            a.name,
            graph_text,
            self.graph.filename,
            self.overrides,
            self.wiring.to_dict(),
            a.incarnation,
            run_dir,
            env,
            self.backend,
            self.switchboard.secret(a.name),
        )

    def _start_local(self, a: AgentProc, tag: str, *, standby: bool = False) -> subprocess.Popen[bytes]:
        path = self._plan_path(a, tag)
        path.write_text(self._plan(a, self.graph.source_text, str(self.run_dir), self.env).to_json())
        env = {**os.environ, **self.env, **self._worker_env(), "EDGELOOP_PARENT_PID": str(os.getpid())}
        env["PYTHONPATH"] = worker_pythonpath(env.get("PYTHONPATH", ""))
        cmd = [*WORKER_COMMAND, *(["--standby"] if standby else []), str(path)]
        # Own session: a terminal Ctrl-C reaches only the launcher, which stops the workers in order.
        return subprocess.Popen(
            cmd, env=env, start_new_session=True, stdin=subprocess.PIPE if standby else None
        )

    def _plan_path(self, a: AgentProc, tag: str) -> Path:
        return self.run_dir / f"plan-{a.name}-{tag}.json"

    def _worker_env(self) -> dict[str, str]:
        env = {KEYS_DIR_ENV: str(self.keys_dir)} if self.wiring.curve else {}
        if self.remote is not None and self.remote.broker_url:
            env["EDGELOOP_BROKER_URL"] = self.remote.broker_url  # for mqtt.* nodes without a url
        return env
