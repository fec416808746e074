"""Routing inside workers, in-process: a same-agent edge delivers by reference (no encoding), an undeclared
output is refused, end of stream closes inputs and carries the sent count across agents (loopback ipc)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq.asyncio

from runtime.agent import AgentWorker
from runtime.errors import GraphError
from runtime.graph import Graph, load_graph
from runtime.supervision import NodeState
from runtime.wiring import plan_wiring

TIMEOUT_S = 5.0


def _graph(text: str) -> Graph:
    return load_graph("routing.yaml", text=text)


class Workers:
    """Makes AgentWorkers on one ZeroMQ context; stops and closes them all at the end of the test."""

    def __init__(self, run_dir: Path) -> None:
        self.ctx = zmq.asyncio.Context()
        self.run_dir = run_dir
        self.made: list[AgentWorker] = []

    def make(self, graph: Graph, agent: str, **kw: Any) -> AgentWorker:
        w = AgentWorker(graph, agent, plan_wiring(graph, self.run_dir), zctx=self.ctx, **kw)
        self.made.append(w)
        return w


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    ws = Workers(tmp_path)
    yield ws
    for w in ws.made:
        await asyncio.wait_for(w.stop(), TIMEOUT_S)
        w.close()
    ws.ctx.term()


LOCAL = """
name: local
nodes:
  - {id: src, uses: source.counter}
  - {id: sink, uses: sink.counter, inputs: {in: {from: src/out, policy: drop_oldest, queue: 8}}}
"""


async def test_an_in_process_edge_delivers_by_reference(workers: Workers) -> None:
    w = workers.make(_graph(LOCAL), "main")
    w.connect_routes()
    arr = np.arange(1_000_000, dtype=np.float32)
    blob = b"x" * 100
    await w.emit("src", "out", {"frame": arr, "blob": blob}, 123, "")
    q = w.runners["sink"].queues["in"]
    assert len(q) == 1
    got = q.pop()
    assert got.topic == "src/out" and got.seq == 0 and got.t_sense_ns == 123 and got.origin == "src/out"
    frame = got.payload["frame"]
    assert np.shares_memory(frame, arr) and not frame.flags.writeable  # a read-only view, not a copy
    assert got.payload["blob"] is blob
    assert w.router.outputs()["src/out"] == {"sent": 1, "send_drops": 0, "bytes": 0}  # nothing encoded


async def test_an_undeclared_output_is_refused(workers: Workers) -> None:
    w = workers.make(_graph(LOCAL), "main")
    w.connect_routes()
    with pytest.raises(GraphError, match="output 'nope', which is not declared \\(outputs: out\\)"):
        await w.emit("src", "nope", 1, None, "")


async def test_end_of_stream_closes_local_inputs(workers: Workers) -> None:
    w = workers.make(_graph(LOCAL), "main")
    w.connect_routes()
    await w.router.finish("src")
    q = w.runners["sink"].queues["in"]
    assert q.eos and q.stats.closed


TWO = """
name: two
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}}
"""


async def test_end_of_stream_carries_the_sent_count_across_agents(workers: Workers) -> None:
    graph = _graph(TWO)
    a, b = workers.make(graph, "a"), workers.make(graph, "b")
    for w in (a, b):
        w.bind_inboxes()
    for w in (a, b):
        w.connect_routes()
        await asyncio.wait_for(w.wait_connected(), TIMEOUT_S)
    await b.start_nodes()
    b.go()
    for i in range(5):
        await a.emit("src", "out", i, None, "")
    a.router.routes[("src", "out")].seq += 3  # three messages "lost on the way": never sent
    await a.router.finish("src")  # EOS says 8 were sent
    await asyncio.wait_for(b.done_event.wait(), TIMEOUT_S)  # the sink's only input closed: it finished
    sink = b.runners["sink"]
    st = sink.stats["in"]
    assert sink.state is NodeState.FINISHED
    assert st.received == 5 and st.dropped_gap == 3 and st.closed
    assert sink.ctx.counters["received"] == 5
    assert b.router.malformed == 0 and b.router.unroutable == 0
    out = a.snapshot()["outputs"]["src/out"]
    assert out["sent"] == 5 and out["bytes"] > 0


async def test_the_backend_override_reaches_every_node(workers: Workers) -> None:
    graph = _graph(LOCAL + "backend: ideal\n")
    assert all(r.ctx.backend_override == "ideal" for r in workers.make(graph, "main").runners.values())
    w = workers.make(graph, "main", backend_override="rram:adc_bits=6")
    assert all(r.ctx.backend_override == "rram:adc_bits=6" for r in w.runners.values())


LATEST = """
name: latest
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: {from: src/out, policy: latest}}}
"""


async def test_a_full_lossy_pipe_drops_older_messages_never_the_newest(workers: Workers) -> None:
    graph = _graph(LATEST)
    a, b = workers.make(graph, "a"), workers.make(graph, "b")
    for w in (a, b):
        w.bind_inboxes()
    for w in (a, b):
        w.connect_routes()
        await asyncio.wait_for(w.wait_connected(), TIMEOUT_S)
    n = 20_000  # b reads nothing yet: ZeroMQ's pipes and the socket buffers fill and refuse the rest
    for i in range(n):
        await a.emit("src", "out", i, None, "")
    route = a.router.routes[("src", "out")]
    assert route.send_drops > 0, "the pipe never filled: the test proves nothing"
    assert list(route.held) == [0]  # the newest message waits for room instead of being dropped
    await b.start_nodes()
    b.go()
    await a.router.finish("src")
    await asyncio.wait_for(b.done_event.wait(), TIMEOUT_S)
    st = b.runners["sink"].stats["in"]
    assert b.runners["sink"].ctx.counters["last"] == n - 1  # the newest survived
    assert st.received + st.dropped_gap + st.dropped_queue == n
    assert st.dropped_gap == route.send_drops  # each side counts the same loss
