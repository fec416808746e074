"""The liveness view: other agents' state from their retained status, heartbeats and telemetry.

Liveness follows [SCIENCE 5.1]: a retained `status` = online on every connect, a retained last
will = offline (fires only on an unclean disconnect, so a graceful exit publishes offline itself),
and heartbeats sent from the event loop: a blocked Python loop keeps its TCP connection (and MQTT
keepalives may even go on), so only missing application heartbeats reveal it [SCIENCE 1.1 [M]].
Observers declare an agent `stale` after `stale_after` missed heartbeat periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace

from ..errors import InputTimeoutError
from . import protocol as p
from .events import AgentChanged, AgentInfo

__all__ = ["Liveness"]


class Liveness:
    """Every other agent of the fleet seen so far, by name; `changed(event)` hears each state change.

    `own_heartbeat_s` bounds how often `watch` checks for silence (with the others' periods).
    """

    def __init__(
        self, *, stale_after: int, own_heartbeat_s: float, changed: Callable[[AgentChanged], None]
    ) -> None:
        self.stale_after = stale_after
        self._own_heartbeat_s = own_heartbeat_s
        self._changed_cb = changed
        self._agents: dict[str, AgentInfo] = {}
        self._changed = asyncio.Event()

    @property
    def agents(self) -> dict[str, AgentInfo]:
        """A copy of the view."""
        return dict(self._agents)

    def get(self, agent: str) -> AgentInfo | None:
        return self._agents.get(agent)

    def on_status(self, agent: str, status: p.AgentStatus | None, now: float) -> None:
        """A retained status arrived; None (an empty retained payload clears the topic) forgets the agent."""
        if status is None:
            self._agents.pop(agent, None)
            return
        self._set(
            AgentInfo(
                agent,
                status.state,
                status.pid,
                status.host,
                now,
                now,
                status.heartbeat_s,
                status.reason,
                status.info,
            )
        )

    def on_traffic(self, agent: str, now: float) -> None:
        """A heartbeat or telemetry from `agent`: a known, not offline agent is online (again)."""
        prev = self._agents.get(agent)
        if prev is not None and prev.state != "offline":
            since = prev.since if prev.state == "online" else now
            self._set(replace(prev, state="online", last_seen=now, since=since))

    def expire(self, now: float) -> None:
        """Mark online agents silent for more than `stale_after` of their own heartbeat periods stale."""
        for a in list(self._agents.values()):
            if a.state == "online" and now - a.last_seen > self.stale_after * a.heartbeat_s:
                self._set(replace(a, state="stale", since=now))

    async def watch(self) -> None:
        """Run `expire` at a quarter of the shortest heartbeat period known (at least every 20 ms apart)."""
        while True:
            periods = [a.heartbeat_s for a in self._agents.values()] + [self._own_heartbeat_s]
            await asyncio.sleep(max(0.02, min(periods) / 4))
            self.expire(time.time())

    async def wait_for(self, agent: str, state: p.AgentState, timeout_s: float) -> AgentInfo:
        """Wait until `agent` is in `state` (checked on every state change), or raise InputTimeoutError."""
        deadline = time.monotonic() + timeout_s
        while True:
            info = self._agents.get(agent)
            if info is not None and info.state == state:
                return info
            left = deadline - time.monotonic()
            if left <= 0:
                raise InputTimeoutError(
                    f"agent {agent!r} not {state} within {timeout_s:g} s "
                    f"(last known: {info.state if info else 'never seen'})"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def _set(self, info: AgentInfo) -> None:
        prev = self._agents.get(info.name)
        self._agents[info.name] = info
        if prev is None or prev.state != info.state:
            self._changed_cb(AgentChanged(info.name, info.state, prev.state if prev else None, info))
            self._changed.set()  # wake every waiter, then re-arm for the next change
            self._changed = asyncio.Event()
