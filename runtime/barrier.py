"""The start barrier: `bound → connect → ready → start → started → go`, so no message meets a node that
does not exist yet; after the first start, a restarted agent passes it alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from .control import Bound, Connect, Go, LauncherMessage, Ready, Start, Started
from .supervision import AgentProc, AgentState
from .wiring import Wiring

__all__ = ["StartBarrier"]

#: send(agent, message) to that agent's worker.
SendFn = Callable[[str, LauncherMessage], Awaitable[None]]


class StartBarrier:
    """Moves agents along the barrier as their workers report, answering through `send`.

    `Connect` goes out once every agent has bound (each may have moved a taken port, so the wiring is
    final only then); `Go` once every agent's nodes are set up. `started` is set by the launcher when
    the whole graph runs: from then on each (restarted) agent is let through on its own.
    """

    def __init__(
        self, agents: Mapping[str, AgentProc], wiring: Wiring, started: asyncio.Event, send: SendFn
    ) -> None:
        self.agents = agents
        self.wiring = wiring
        self.started = started
        self.send = send

    async def step(self, a: AgentProc, msg: Bound | Ready | Started) -> None:
        agents = self.agents.values()
        match msg:
            case Bound(endpoints=moved):
                a.state = AgentState.BOUND
                for old, new in moved.items():
                    self.wiring.rebind(old, new)  # its host had the proposed port taken
                if all(x.state is not AgentState.SPAWNED for x in agents) or self.started.is_set():
                    for x in agents:
                        if x.state is AgentState.BOUND:
                            await self.send(x.name, Connect(self.wiring))
            case Ready():
                a.state = AgentState.READY
                await self.send(a.name, Start())
            case Started():
                # Sources and timers start only once every agent's nodes are set up (or at once after a restart).
                a.state = AgentState.STARTED
                if self.started.is_set():
                    await self.send(a.name, Go())
                    a.state = AgentState.RUNNING
                elif all(x.state is AgentState.STARTED for x in agents):
                    for x in agents:
                        await self.send(x.name, Go())
                        x.state = AgentState.RUNNING
