"""A worker's control loop (`runtime.worker.serve`) in-process against a scripted launcher ROUTER: the start
barrier in order, malformed commands ignored, stop answered with a goodbye; the plan's backend reaches nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from runtime.control import (
    Bound,
    Bye,
    Connect,
    Done,
    Go,
    Ready,
    Start,
    Started,
    Stats,
    Stop,
    WorkerMessage,
    decode,
    encode,
)
from runtime.errors import GraphError
from runtime.graph import load_graph
from runtime.plan import Activation, WorkerPlan
from runtime.wiring import plan_wiring
from runtime.worker import serve

TIMEOUT_S = 10.0
GRAPH = """
name: wctl
nodes:
  - {id: src, uses: source.counter, params: {count: 10}}
  - {id: sink, uses: sink.counter, inputs: {in: {from: src/out, policy: backpressure}}}
"""


class FakeLauncher:
    """The launcher's ROUTER, scripted: `expect(kind)` skips statistics until a message of that kind comes."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.stats = 0

    async def expect(self, kind: type[WorkerMessage]) -> Any:
        while True:
            ident, body = await asyncio.wait_for(self.sock.recv_multipart(), TIMEOUT_S)
            msg = decode(body)
            assert ident == b"main" and getattr(msg, "agent", None) == "main"
            if isinstance(msg, kind):
                return msg
            assert isinstance(msg, Stats), f"expected {kind.__name__}, got {msg}"
            self.stats += 1

    async def send(self, *frames: bytes) -> None:
        await self.sock.send_multipart([b"main", *frames])


async def test_the_control_loop_runs_the_barrier_and_ignores_bad_commands(tmp_path: Path) -> None:
    graph = load_graph("wctl.yaml", text=GRAPH)
    wiring = plan_wiring(graph, tmp_path)
    plan = WorkerPlan("main", GRAPH, "wctl.yaml", [], wiring.to_dict(), incarnation=4, run_dir=str(tmp_path))
    ctx = zmq.asyncio.Context()
    launcher = FakeLauncher(ctx, wiring.control)
    worker = asyncio.create_task(serve(WorkerPlan.from_json(plan.to_json())))
    try:
        bound = await launcher.expect(Bound)
        assert bound.incarnation == 4 and bound.endpoints == {}
        # Garbage first: two frames, not msgpack, an unknown kind, a worker's own kind. None of it counts.
        await launcher.send(b"a", b"b")
        await launcher.send(b"\xc1")
        await launcher.send(msgpack.packb({"t": "launch"}))
        await launcher.send(encode(Ready("main", 4)))
        await launcher.send(encode(Connect(wiring)))
        await launcher.expect(Ready)
        await launcher.send(encode(Start()))
        await launcher.expect(Started)
        await launcher.send(encode(Go()))
        await launcher.expect(Done)  # 10 messages, end of stream: every node finished
        await launcher.send(encode(Stop()))
        bye = await launcher.expect(Bye)
        assert await asyncio.wait_for(worker, TIMEOUT_S) == 0
    finally:
        if not worker.done():
            worker.cancel()
        launcher.sock.close()
        ctx.term()
    assert bye.code == 0 and bye.incarnation == 4
    nodes = bye.snapshot["nodes"]
    assert nodes["sink"]["counters"]["received"] == 10 and nodes["sink"]["state"] == "finished"
    assert nodes["src"]["state"] == "finished"


def test_a_plan_round_trips_with_its_backend_and_rejects_strangers() -> None:
    plan = WorkerPlan(
        "a",
        "text",
        "g.yaml",
        ["n.p=1"],
        {"control": "ipc://x"},
        2,
        "/run",
        {"EDGELOOP_LOG": "INFO"},
        {"kind": "rram", "adc_bits": 6},
    )
    back = WorkerPlan.from_json(plan.to_json())
    assert back == plan and back.backend == {"kind": "rram", "adc_bits": 6}
    assert WorkerPlan.from_dict({**plan.to_dict(), "backend": None}).backend is None
    with pytest.raises(GraphError, match="bad or missing incarnation; unknown -"):
        WorkerPlan.from_dict({**plan.to_dict(), "incarnation": True})
    with pytest.raises(GraphError, match="bad or missing agent.*unknown command"):
        WorkerPlan.from_dict({**{k: v for k, v in plan.to_dict().items() if k != "agent"}, "command": "rm"})
    with pytest.raises(GraphError, match="bad or missing backend"):
        WorkerPlan.from_dict({**plan.to_dict(), "backend": 3})
    with pytest.raises(GraphError, match="a list, not an object"):
        WorkerPlan.from_json("[]")


def test_a_standby_activation_round_trips() -> None:
    word = Activation(3, {"control": "ipc://x"})
    assert Activation.from_line(word.to_line().decode()) == word
    with pytest.raises(GraphError, match="not a standby activation"):
        Activation.from_line('{"incarnation": "3", "wiring": {}}')
