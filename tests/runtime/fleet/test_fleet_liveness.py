"""Liveness without a broker: statuses, traffic, staleness by the sender's own period, waiting for a state."""

from __future__ import annotations

import asyncio

import pytest

from runtime.errors import InputTimeoutError
from runtime.fleet import protocol as p
from runtime.fleet.events import AgentChanged
from runtime.fleet.liveness import Liveness


def view(stale_after: int = 3) -> tuple[Liveness, list[AgentChanged]]:
    changes: list[AgentChanged] = []
    return Liveness(stale_after=stale_after, own_heartbeat_s=1.0, changed=changes.append), changes


def status(state: str = "online", heartbeat_s: float = 1.0, reason: str = "") -> p.AgentStatus:
    return p.AgentStatus(state, 42, "cam-host", 0.0, heartbeat_s, reason, {"role": "camera"})  # type: ignore[arg-type]


def test_a_status_makes_an_agent_known_and_each_change_is_told_once() -> None:
    lv, changes = view()
    lv.on_status("cam", status(), now=100.0)
    lv.on_status("cam", status(), now=101.0)  # same state: no event
    lv.on_status("cam", status("offline", reason="lost"), now=102.0)
    assert [(c.agent, c.previous, c.state) for c in changes] == [
        ("cam", None, "online"),
        ("cam", "online", "offline"),
    ]
    info = lv.agents["cam"]
    assert (info.pid, info.host, info.reason, info.info, info.since) == (
        42,
        "cam-host",
        "lost",
        {"role": "camera"},
        102.0,
    )
    lv.on_status("cam", None, now=103.0)  # an empty retained status: forgotten, without an event
    assert lv.agents == {} and len(changes) == 2


def test_agents_is_a_copy() -> None:
    lv, _ = view()
    lv.on_status("cam", status(), now=0.0)
    lv.agents.clear()
    assert lv.get("cam") is not None


def test_traffic_revives_only_known_agents_that_are_not_offline() -> None:
    lv, changes = view()
    lv.on_traffic("ghost", now=1.0)  # never announced itself: stays unknown
    assert lv.get("ghost") is None
    lv.on_status("gone", status("offline"), now=0.0)
    lv.on_traffic("gone", now=1.0)  # a stray heartbeat after a graceful exit does not revive it
    assert lv.agents["gone"].state == "offline"
    lv.on_status("cam", status(), now=0.0)
    lv.on_traffic("cam", now=2.0)  # online stays online, since kept, last_seen moves
    assert (lv.agents["cam"].since, lv.agents["cam"].last_seen) == (0.0, 2.0)
    lv.expire(now=10.0)
    assert lv.agents["cam"].state == "stale"
    lv.on_traffic("cam", now=11.0)
    assert (lv.agents["cam"].state, lv.agents["cam"].since) == ("online", 11.0)
    assert [c.state for c in changes if c.agent == "cam"] == ["online", "stale", "online"]


def test_stale_after_more_than_n_of_the_senders_own_periods() -> None:
    lv, changes = view(stale_after=3)
    lv.on_status("fast", status(heartbeat_s=0.1), now=0.0)
    lv.on_status("slow", status(heartbeat_s=2.0), now=0.0)
    lv.expire(now=0.3)  # exactly 3 periods of 'fast': not yet
    assert lv.agents["fast"].state == "online"
    lv.expire(now=0.31)
    assert (lv.agents["fast"].state, lv.agents["slow"].state) == ("stale", "online")
    lv.expire(now=6.01)
    assert lv.agents["slow"].state == "stale"
    lv.expire(now=100.0)  # stale agents are not told again
    assert [c.state for c in changes].count("stale") == 2


async def test_wait_for_wakes_on_the_change_and_names_the_last_state_on_timeout() -> None:
    lv, _ = view()
    waiter = asyncio.create_task(lv.wait_for("cam", "online", timeout_s=2.0))
    await asyncio.sleep(0)  # let the waiter block on the change event
    assert not waiter.done()
    lv.on_status("cam", status(), now=0.0)
    assert (await asyncio.wait_for(waiter, 2.0)).state == "online"
    with pytest.raises(
        InputTimeoutError, match=r"agent 'cam' not offline within 0.05 s \(last known: online\)"
    ):
        await lv.wait_for("cam", "offline", timeout_s=0.05)
    with pytest.raises(
        InputTimeoutError, match=r"agent 'nobody' not online within 0 s \(last known: never seen\)"
    ):
        await lv.wait_for("nobody", "online", timeout_s=0.0)
