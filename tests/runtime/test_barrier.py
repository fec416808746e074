"""The start barrier without processes: connect only once all have bound (with moved ports), go only once
all have started, and a restarted agent let through alone once the graph runs."""

from __future__ import annotations

import asyncio

from runtime.barrier import StartBarrier
from runtime.control import Bound, Connect, Go, LauncherMessage, Ready, Start, Started
from runtime.graph import RestartSpec
from runtime.supervision import AgentProc, AgentState
from runtime.wiring import Wiring


class Sent(list[tuple[str, LauncherMessage]]):
    async def __call__(self, agent: str, msg: LauncherMessage) -> None:
        self.append((agent, msg))


def _barrier() -> tuple[StartBarrier, dict[str, AgentProc], Sent, Wiring]:
    agents = {n: AgentProc(n, RestartSpec()) for n in ("a", "b")}
    wiring = Wiring("ipc://c", {"a": "tcp://h:1", "b": "tcp://h:2"}, bind={"tcp://h:1": "tcp://0.0.0.0:1"})
    sent = Sent()
    return StartBarrier(agents, wiring, asyncio.Event(), sent), agents, sent, wiring


async def test_connect_waits_for_every_agent_and_carries_moved_ports() -> None:
    barrier, agents, sent, wiring = _barrier()
    await barrier.step(agents["a"], Bound("a", 0, 1, {"tcp://h:1": "tcp://h:7"}))
    assert sent == [] and agents["a"].state is AgentState.BOUND  # b has not bound yet
    await barrier.step(agents["b"], Bound("b", 0, 2, {}))
    assert [(n, type(m)) for n, m in sent] == [("a", Connect), ("b", Connect)]
    assert wiring.inbox["a"] == "tcp://h:7" and wiring.bind["tcp://h:7"] == "tcp://0.0.0.0:7"
    assert all(isinstance(m, Connect) and m.wiring.inbox["a"] == "tcp://h:7" for _, m in sent)


async def test_go_waits_for_every_agent_to_start() -> None:
    barrier, agents, sent, _ = _barrier()
    for n in ("a", "b"):
        agents[n].state = AgentState.BOUND
    await barrier.step(agents["a"], Ready("a", 0))
    assert sent == [("a", Start())]
    await barrier.step(agents["a"], Started("a", 0))
    assert (
        sent[-1] == ("a", Start()) and agents["a"].state is AgentState.STARTED
    )  # no go yet: b is not set up
    await barrier.step(agents["b"], Ready("b", 0))
    await barrier.step(agents["b"], Started("b", 0))
    assert sent[-2:] == [("a", Go()), ("b", Go())]
    assert all(x.state is AgentState.RUNNING for x in agents.values())


async def test_once_running_a_restarted_agent_passes_alone() -> None:
    barrier, agents, sent, _ = _barrier()
    agents["a"].state = AgentState.RUNNING
    agents["b"].state = AgentState.SPAWNED  # restarting
    barrier.started.set()
    await barrier.step(agents["b"], Bound("b", 1, 3, {}))
    assert [(n, type(m)) for n, m in sent] == [("b", Connect)]  # a is running: not connected again
    await barrier.step(agents["b"], Ready("b", 1))
    await barrier.step(agents["b"], Started("b", 1))
    assert sent[1:] == [("b", Start()), ("b", Go())] and agents["b"].state is AgentState.RUNNING
