"""Supervision records without processes: restart budgets, agent exits against the restart policy,
remote silence, failures as typed records and the run's exit code decided from their fields."""

from __future__ import annotations

import asyncio

import pytest

from runtime.graph import RestartSpec
from runtime.supervision import (
    AgentProc,
    AgentState,
    Failure,
    FailureKind,
    RestartBudget,
    Supervisor,
    run_exit_code,
)


def test_restart_budget_doubles_its_delay_and_runs_out_within_the_window() -> None:
    b = RestartBudget(
        RestartSpec(policy="on-failure", max_restarts=4, window_s=10.0, backoff_ms=100, backoff_max_ms=300)
    )
    assert [b.take(t) for t in (0.0, 1.0, 2.0, 3.0)] == [0.1, 0.2, 0.3, 0.3]
    assert b.take(4.0) is None  # four restarts within 10 s: spent
    assert b.take(10.5) == 0.3  # the first left the window: one more is allowed (three still inside)
    assert b.take(10.6) is None


def _agents(policy: str = "on-failure", remote: bool = False) -> dict[str, AgentProc]:
    spec = RestartSpec(policy=policy, max_restarts=1, backoff_ms=50)  # type: ignore[arg-type]
    return {"a": AgentProc("a", spec, remote=remote, state=AgentState.RUNNING)}


def test_an_exit_is_a_failure_and_a_restart_until_the_budget_is_spent() -> None:
    agents = _agents()
    sup = Supervisor(agents, asyncio.Event())
    a = agents["a"]
    sup.exited(a, -9, "code -9", now=100.0)
    assert a.state is AgentState.EXITED and a.restart_at == pytest.approx(100.05)
    assert not sup.due(a, 100.04) and sup.due(a, 100.05)
    assert (a.incarnation, a.restarts, a.restart_at) == (1, 1, None)
    a.state = AgentState.RUNNING
    sup.exited(a, -9, "code -9", now=101.0)
    assert a.restart_at is None  # spent: given up
    assert [f.kind for f in sup.failures] == [
        FailureKind.AGENT_EXITED,
        FailureKind.AGENT_EXITED,
        FailureKind.GAVE_UP,
    ]
    assert sup.failures[-1].message == "agent 'a': gave up after 1 restarts in 60.0 s"
    assert sup.exit_code([]) == 1


def test_exits_while_stopping_are_expected() -> None:
    agents = _agents()
    stop = asyncio.Event()
    sup = Supervisor(agents, stop)
    stop.set()
    sup.exited(agents["a"], 0, "code 0", now=1.0)
    assert sup.failures == [] and agents["a"].restart_at is None and sup.exit_code([]) == 0


def test_on_failure_does_not_restart_a_clean_exit_and_never_means_dead() -> None:
    agents = _agents()
    sup = Supervisor(agents, asyncio.Event())
    sup.exited(agents["a"], 0, "code 0", now=1.0)
    assert agents["a"].restart_at is None and sup.exit_code([]) == 0  # an unexpected exit alone: still 0

    agents = _agents("never", remote=True)
    sup = Supervisor(agents, asyncio.Event())
    sup.exited(agents["a"], None, "its daemon went offline", now=1.0)
    assert sup.failures[0].message == "agent 'a' exited unexpectedly (its daemon went offline)"
    assert agents["a"].died_for_good and sup.exit_code([]) == 1


def test_a_silent_remote_agent_counts_as_exited() -> None:
    agents = _agents(remote=True)
    a = agents["a"]
    sup = Supervisor(agents, asyncio.Event(), remote_silence_s=10.0)
    a.last_msg = 100.0
    assert sup.remote_down(a, 105.0, started=True, daemon="online") is None
    assert sup.remote_down(a, 103.0, started=True, daemon="offline") == (
        None,
        "no statistics for 3.0 s (its daemon is offline)",
    )
    sup.remote_exit("a", a.incarnation + 1, 1, "an older report")  # another incarnation: ignored
    assert a.remote_exit is None
    sup.remote_exit("a", None, 2, "exited with code 2")
    assert sup.remote_down(a, 100.5, started=True, daemon="online") == (2, "exited with code 2")


def test_the_exit_code_comes_from_the_records_not_their_text() -> None:
    odd = Failure(FailureKind.NODE_FAILED, "a", "it gave up on its input", "n")  # "gave up" in the text only
    assert not odd.fails_run and run_exit_code([odd], [], []) == 0
    assert run_exit_code([odd], ["n"], []) == 1  # a failed node in the statistics is what counts
    assert run_exit_code([Failure(FailureKind.GAVE_UP, "a", "5 restarts in 60 s")], [], []) == 1
    assert str(odd) == "node 'n' (a): it gave up on its input"
    assert {str(Failure(k, "a", "x")) for k in FailureKind} >= {
        "agent 'a' killed at stop",
        "agent 'a' killed (second Ctrl-C)",
    }
