"""Supervision records: node and agent states, restart budgets, failures and the run's exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import EdgeloopError, GraphError
from .graph import RestartSpec

__all__ = [
    "failure_file",
    "log_hook_failure",
    "NodeState",
    "AgentState",
    "RestartBudget",
    "FailureKind",
    "Failure",
    "AgentProc",
    "Supervisor",
    "run_exit_code",
]

log = logging.getLogger("edgeloop.launcher")
#: A remote worker silent this long while its daemon is stale or offline counts as gone (its host is cut off).
_CUT_OFF_S = 2.0


class NodeState(StrEnum):
    """Where a node is in its life inside a worker (reported in every snapshot as its value)."""

    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """Finished or failed: it takes no more input."""
        return self in (NodeState.FINISHED, NodeState.FAILED)


class AgentState(StrEnum):
    """An agent's worker as the launcher sees it, along the start barrier and after."""

    SPAWNED = "spawned"  # started (or deployed), not heard from yet
    BOUND = "bound"  # its inboxes are bound
    READY = "ready"  # its PUSH sockets are connected
    STARTED = "started"  # its nodes are set up
    RUNNING = "running"  # told to go
    DONE = "done"  # every node finished
    EXITED = "exited"  # its process is gone (or, remote, counted as gone)


class RestartBudget:
    """A restart policy's allowance: at most `max_restarts` within `window_s`; each delay doubles
    from `backoff_ms` up to `backoff_max_ms`. The same rule for a node (in its worker) and an agent."""

    def __init__(self, spec: RestartSpec) -> None:
        self.spec = spec
        self._times: list[float] = []  # monotonic times of the restarts still inside the window

    def take(self, now: float) -> float | None:
        """Book a restart at `now` and return its delay (s), or None when the budget is spent."""
        self._times = [t for t in self._times if now - t < self.spec.window_s]
        if len(self._times) >= self.spec.max_restarts:
            return None
        delay_s = min(self.spec.backoff_ms * 2.0 ** len(self._times), self.spec.backoff_max_ms) / 1000.0
        self._times.append(now)
        return delay_s


class FailureKind(StrEnum):
    """What went wrong; `Failure.fails_run` and `run_exit_code` decide from this, never from text."""

    NODE_FAILED = "node failed"  # a node's hook failed beyond its restart policy
    AGENT_EXITED = "agent exited"  # a worker process exited (or, remote, went silent) unasked
    GAVE_UP = "gave up"  # an agent's restart budget is spent
    KILLED_AT_STOP = "killed at stop"  # a worker did not stop within the grace
    KILLED_BY_SIGNAL = "killed by signal"  # a second Ctrl-C
    STOPPED_BY_DAEMON = "stopped by daemon"  # a remote worker stopped through its daemon at stop
    DAEMON_STOP_FAILED = "daemon stop failed"


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure of a run: its kind, the agent (and node) it concerns, and a detail for people."""

    kind: FailureKind
    agent: str
    detail: str = ""
    node: str = ""

    @property
    def fails_run(self) -> bool:
        """True when this failure alone makes the run's exit code 1."""
        return self.kind is FailureKind.GAVE_UP

    @property
    def message(self) -> str:
        a = self.agent
        match self.kind:
            case FailureKind.NODE_FAILED:
                return f"node '{self.node}' ({a}): {self.detail}"
            case FailureKind.AGENT_EXITED:
                return f"agent '{a}' exited unexpectedly ({self.detail})"
            case FailureKind.GAVE_UP:
                return f"agent '{a}': gave up after {self.detail}"
            case FailureKind.KILLED_AT_STOP:
                return f"agent '{a}' killed at stop"
            case FailureKind.KILLED_BY_SIGNAL:
                return f"agent '{a}' killed (second Ctrl-C)"
            case FailureKind.STOPPED_BY_DAEMON:
                return f"agent '{a}' stopped through its daemon at stop"
            case FailureKind.DAEMON_STOP_FAILED:
                return f"agent '{a}': stop through its daemon failed: {self.detail}"

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False)
class AgentProc:
    """The launcher's record of one agent: its process (or remote part), incarnation, state, restarts."""

    name: str
    restart: RestartSpec
    remote: bool = False  # deployed through the broker to the `edgeloop agent` of the same name
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    state: AgentState = AgentState.SPAWNED
    bye: bool = False  # it said goodbye (final statistics sent, sockets closed)
    restarts: int = 0
    restart_at: float | None = None  # monotonic time of a pending restart
    spawned_at: float = 0.0
    exit_code: int | None = None  # a remote worker's, from its daemon or its "bye"
    reason: str = ""
    last_msg: float = 0.0  # monotonic time of its last control message (stats every 0.5 s)
    remote_exit: tuple[int | None, str] | None = None
    spare: subprocess.Popen[bytes] | None = None  # a warm standby worker (`standby: true`)
    spare_failed: bool = False
    budget: RestartBudget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = RestartBudget(self.restart)

    def spawned(self, now: float) -> None:
        """A new incarnation was started (or deployed, or a spare took over): back to the barrier's start."""
        self.state, self.bye, self.spawned_at = AgentState.SPAWNED, False, now

    @property
    def died_for_good(self) -> bool:
        """It died unasked and will not be restarted (policy `never`): the run has failed.

        A local worker counts if it exited non-zero without a goodbye; a remote one is `exited` only
        if it died unasked (a stopped one said goodbye or was stopped through its daemon)."""
        died = (
            self.proc is not None
            and self.proc.returncode not in (0, None)
            and not self.bye
            or self.remote
            and self.state is AgentState.EXITED
        )
        return bool(died) and self.restart_at is None and self.restart.policy == "never"


class Supervisor:
    """The launcher's judgement of its agents: exits seen, failures recorded, restarts scheduled per
    policy, and the run's exit code. It starts nothing: the launcher restarts what `due` returns."""

    def __init__(
        self,
        agents: Mapping[str, AgentProc],
        stop_requested: asyncio.Event,
        *,
        startup_timeout_s: float = 60.0,
        remote_silence_s: float = 10.0,
    ) -> None:
        self.agents = agents
        self.stop_requested = stop_requested  # once set, exits are expected: no failure, no restart
        self.startup_timeout_s = startup_timeout_s
        self.remote_silence_s = remote_silence_s
        self.failures: list[Failure] = []

    @property
    def stopping(self) -> bool:
        return self.stop_requested.is_set()

    def exited(self, a: AgentProc, code: int | None, why: str, now: float) -> None:
        """Agent `a`'s worker is gone (`why`: "code N" or a remote reason)."""
        a.state = AgentState.EXITED
        if not self.stopping:
            self.failures.append(Failure(FailureKind.AGENT_EXITED, a.name, why))
            self._schedule_restart(a, code, now)

    def _schedule_restart(self, a: AgentProc, code: int | None, now: float) -> bool:
        pol = a.restart
        if pol.policy == "never" or (pol.policy == "on-failure" and code == 0):
            return False
        delay = a.budget.take(now)
        if delay is None:
            self.failures.append(
                Failure(FailureKind.GAVE_UP, a.name, f"{pol.max_restarts} restarts in {pol.window_s} s")
            )
            return False
        a.restart_at = now + delay
        log.warning("agent '%s' exited (code %s); restarting in %.0f ms", a.name, code, delay * 1000)
        return True

    def due(self, a: AgentProc, now: float) -> bool:
        """True when `a`'s restart is due: its next incarnation is booked, the launcher starts it."""
        if a.restart_at is None or now < a.restart_at or self.stopping:
            return False
        a.restart_at = None
        a.incarnation += 1
        a.restarts += 1
        return True

    def remote_exit(self, name: str, incarnation: int | None, code: int | None, reason: str) -> None:
        """From the fleet: a remote worker (this incarnation, or whichever runs if None) is gone."""
        a = self.agents.get(name)
        if a is None or not a.remote or a.state is AgentState.EXITED or a.remote_exit is not None:
            return
        if incarnation is not None and incarnation != a.incarnation:
            return
        a.remote_exit = (code, reason)

    def remote_down(
        self, a: AgentProc, now: float, *, started: bool, daemon: str
    ) -> tuple[int | None, str] | None:
        """Why remote agent `a` counts as exited now (exit code or None, reason), or None while it looks
        alive; `daemon` is its daemon's liveness (online, stale, offline, unknown)."""
        if a.remote_exit is not None:
            return a.remote_exit
        if a.state is AgentState.SPAWNED:
            if started and now - a.spawned_at > self.startup_timeout_s:
                return None, f"not started within {self.startup_timeout_s:.0f} s of its deploy"
            return None
        silent = now - a.last_msg
        # Statistics come every 0.5 s: a long silence is a dead, frozen or cut-off worker; a stale or
        # offline daemon (its host is gone or cut off) shortens the wait.
        if silent > self.remote_silence_s or (silent > _CUT_OFF_S and daemon in ("stale", "offline")):
            return None, f"no statistics for {silent:.1f} s (its daemon is {daemon})"
        return None

    def startup_failure(self, hosts: Mapping[str, str | None]) -> GraphError | None:
        """An agent that exited during start-up with no restart pending ends the run: the error to raise."""
        for a in self.agents.values():
            if a.state is AgentState.EXITED and a.restart_at is None:
                if a.remote:
                    return GraphError(
                        f"agent '{a.name}' (on {hosts.get(a.name)}) exited during start-up: {a.reason}"
                    )
                return GraphError(
                    f"agent '{a.name}' exited during start-up (code "
                    f"{a.proc.returncode if a.proc else '?'}); its log above says why"
                )
        return None

    def exit_code(self, failed_nodes: Iterable[str]) -> int:
        return run_exit_code(self.failures, failed_nodes, self.agents.values())


def run_exit_code(
    failures: Iterable[Failure], failed_nodes: Iterable[str], agents: Iterable[AgentProc]
) -> int:
    """0 for a clean run; 1 if a node failed, an agent's restart budget ran out, or one died for good."""
    failed = any(True for _ in failed_nodes) or any(f.fails_run for f in failures)
    return 1 if failed or any(a.died_for_good for a in agents) else 0


def log_hook_failure(log: logging.LoggerAdapter[logging.Logger], hook: str, exc: BaseException) -> None:
    """Log a node hook's failure: an `EdgeloopError` is a message written for the user (one line; the
    traceback at debug level), anything else is a bug whose traceback is the message."""
    trace = "".join(traceback.format_exception(exc)).rstrip()
    if isinstance(exc, EdgeloopError):
        log.error("%s failed: %s", hook, exc)
        log.debug("%s", trace)
    else:
        log.error("%s failed: %s\n%s", hook, exc, trace)


def failure_file(params: object) -> str:
    """` (file PATH)` when a node's parameters name one (`path` or `file`), for its error."""
    path = getattr(params, "path", None) or getattr(params, "file", None)
    return f" (file {path})" if isinstance(path, str | os.PathLike) else ""
