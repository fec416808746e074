"""Warm spares (`standby: true`): per agent a worker with Python started and the graph loaded, waiting to
become the agent's next incarnation, so a restart skips interpreter start-up and imports."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .plan import Activation, standby_ready_path
from .supervision import AgentProc, AgentState

__all__ = ["Spares"]

log = logging.getLogger("edgeloop.launcher")
_SETTLE_S = 1.0  # after the graph runs, before the first spare starts loading


class Spares:
    """The launcher's spares: `keep(a)` makes one when due, `activate(a, wiring)` hands it the next
    incarnation, `drop()` ends them all.

    `start(a)` starts `python -m runtime.worker --standby PLAN` for agent `a`, whose plan file is
    `plan_path(a)`. Spares load one at a time, starting a second after the graph runs: several
    interpreters importing at once would take the cores from the running agents.
    """

    def __init__(
        self,
        agents: Mapping[str, AgentProc],
        standby: set[str],
        start: Callable[[AgentProc], subprocess.Popen[bytes]],
        plan_path: Callable[[AgentProc], Path],
    ) -> None:
        self.agents = agents
        self.standby = standby  # names of the local agents with `standby: true`
        self._start = start
        self._plan_path = plan_path

    def _ready(self, a: AgentProc) -> bool:
        return standby_ready_path(self._plan_path(a)).exists()

    def keep(self, a: AgentProc, running_since: float) -> None:
        """Once agent `a` runs (since `running_since`, monotonic), see that a spare waits for it."""
        if a.remote or a.name not in self.standby or a.state is not AgentState.RUNNING or a.spare_failed:
            return
        if a.spare is not None:
            if a.spare.poll() is None:
                return
            # A spare that exits before it is needed could not load the graph: its log says why.
            # Restarts then start a fresh worker, as without standby; no more spares for this agent.
            log.warning(
                "agent '%s': its standby worker exited (code %s); restarts will start a new process instead",
                a.name,
                a.spare.returncode,
            )
            a.spare, a.spare_failed = None, True
            return
        if time.monotonic() - running_since < _SETTLE_S or any(
            x.spare is not None and x.spare.poll() is None and not self._ready(x)
            for x in self.agents.values()
        ):
            return
        standby_ready_path(self._plan_path(a)).unlink(missing_ok=True)
        a.spare = self._start(a)

    def activate(self, a: AgentProc, wiring: dict[str, Any]) -> bool:
        """Make the spare agent `a`'s next incarnation (the restart then skips start-up); False if none."""
        spare, a.spare = a.spare, None
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return False
        try:
            spare.stdin.write(Activation(a.incarnation, wiring).to_line())
            spare.stdin.close()
        except OSError:
            spare.kill()
            return False
        a.proc = spare
        a.spawned(time.monotonic())
        return True

    def drop(self) -> None:
        """Kill every spare and wait for it."""
        for a in self.agents.values():
            if a.spare is not None:
                if a.spare.poll() is None:
                    a.spare.kill()
                a.spare.wait()
                a.spare = None
