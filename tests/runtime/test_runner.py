"""NodeRunner driven through a tiny in-process host (the `NodeHost` protocol): arrival order across inputs,
failures against the restart policy, end of input, what reaches the node's context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest

from runtime.clock import WallClock
from runtime.graph import NodeSpec, RestartSpec
from runtime.message import Message, Payload
from runtime.node import Context, Node
from runtime.runner import NodeHost, NodeRunner
from runtime.supervision import NodeState

TIMEOUT_S = 5.0


class FakeHost:
    """Records what a runner reports; `ended` is set when its node finished or failed."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, str, Payload, int | None, str]] = []
        self.finished: list[str] = []
        self.failed: list[tuple[str, str]] = []
        self.ended = asyncio.Event()

    async def emit(self, node_id: str, port: str, payload: Payload, t_sense: int | None, origin: str) -> None:
        self.emitted.append((node_id, port, payload, t_sense, origin))

    async def node_finished(self, runner: NodeRunner) -> None:
        self.finished.append(runner.node_id)
        self.ended.set()

    async def node_failed(self, runner: NodeRunner) -> None:
        self.failed.append((runner.node_id, runner.last_error))
        self.ended.set()


class Recorder(Node):
    """Records (port, payload) in arrival order; fails on payloads in `FAIL_ON`; echoes on `out`."""

    inputs = ("a", "b")
    outputs = ("out",)
    seen: ClassVar[list[tuple[str, Any]]] = []
    instances: ClassVar[int] = 0
    setup_failures: ClassVar[int] = 0  # so many first setups raise
    FAIL_ON: ClassVar[set[Any]] = set()

    def __init__(self) -> None:
        type(self).instances += 1

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        if type(self).setup_failures > 0:
            type(self).setup_failures -= 1
            raise RuntimeError("setup failing on purpose")

    async def on_input(self, port: str, msg: Message) -> None:
        if msg.payload in self.FAIL_ON:
            raise ValueError(f"bad payload {msg.payload}")
        self.seen.append((port, msg.payload))
        await self.ctx.emit("out", msg.payload, t_sense=msg)


@pytest.fixture(autouse=True)
def _fresh_recorder() -> None:
    Recorder.seen, Recorder.instances, Recorder.setup_failures, Recorder.FAIL_ON = [], 0, 0, set()


Make = Callable[..., tuple[NodeRunner, FakeHost]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    runners: list[NodeRunner] = []

    def _make(restart: RestartSpec | None = None, **kw: Any) -> tuple[NodeRunner, FakeHost]:
        host = FakeHost()
        checked: NodeHost = host  # the fake satisfies the protocol the worker implements
        spec = NodeSpec(id="rec", uses="test:Recorder", inputs={"a": "up/a", "b": "up/b"})
        r = NodeRunner(
            checked,
            spec,
            Recorder,
            Recorder.Params(),
            restart or RestartSpec(),
            WallClock(),
            stop_event=asyncio.Event(),
            **kw,
        )
        runners.append(r)
        return r, host

    yield _make
    for r in runners:
        await asyncio.wait_for(r.stop(), TIMEOUT_S)


def msg(port: str, seq: int, payload: Any) -> Message:
    return Message(f"up/{port}", seq, 1000 + seq, 2000 + seq, payload, "cam/out")


async def test_messages_are_handled_in_arrival_order_across_inputs(make: Make) -> None:
    r, host = make()
    arrivals = [("a", 1), ("b", 10), ("a", 2), ("a", 3), ("b", 11)]
    for i, (port, p) in enumerate(arrivals):
        r.deliver_nowait(port, msg(port, i, p))
    await r.start()
    r.close_input("a")
    r.close_input("b")
    await asyncio.wait_for(host.ended.wait(), TIMEOUT_S)
    assert Recorder.seen == arrivals  # not all of `a` first: one order across the inputs
    assert host.finished == ["rec"] and r.state is NodeState.FINISHED
    assert r.stats["a"].received == 3 and r.stats["b"].received == 2


async def test_emit_keeps_the_sensing_time_and_origin_of_the_message(make: Make) -> None:
    r, host = make()
    r.deliver_nowait("a", msg("a", 0, 5))
    await r.start()
    r.close_input("a")
    r.close_input("b")
    await asyncio.wait_for(host.ended.wait(), TIMEOUT_S)
    assert host.emitted == [("rec", "out", 5, 1000, "cam/out")]


async def test_a_failure_restarts_the_node_until_the_budget_is_spent(make: Make) -> None:
    Recorder.FAIL_ON = {"x", "y"}
    r, host = make(RestartSpec(policy="on-failure", max_restarts=1, backoff_ms=0))
    for i, p in enumerate([1, "x", 2, "y", 3, 4]):
        r.deliver_nowait("a", msg("a", i, p))
    await r.start()
    await asyncio.wait_for(host.ended.wait(), TIMEOUT_S)
    # "x" failed: a new instance took over and handled 2; "y" failed with the budget spent.
    assert Recorder.seen == [("a", 1), ("a", 2)]
    assert Recorder.instances == 2 and r.restarts == 1 and r.failures == 2
    assert r.state is NodeState.FAILED
    assert host.failed == [("rec", "on_input: ValueError: bad payload y")]
    assert r.stats["a"].dropped_failed == 2  # 3 and 4, queued when it failed
    r.deliver_nowait("b", msg("b", 0, 9))  # a failed node's input counts what it no longer takes
    assert r.stats["b"].dropped_failed == 1 and not Recorder.seen[2:]
    assert r.snapshot()["state"] == "failed"


async def test_policy_never_fails_at_the_first_error(make: Make) -> None:
    Recorder.FAIL_ON = {"x"}
    r, host = make(RestartSpec(policy="never"))
    r.deliver_nowait("a", msg("a", 0, "x"))
    await r.start()
    await asyncio.wait_for(host.ended.wait(), TIMEOUT_S)
    assert Recorder.instances == 1 and r.restarts == 0 and r.state is NodeState.FAILED
    assert host.failed and host.failed[0][1].startswith("on_input: ValueError")


async def test_a_setup_that_fails_once_is_restarted_and_the_node_runs(make: Make) -> None:
    Recorder.setup_failures = 1
    r, host = make(RestartSpec(policy="on-failure", max_restarts=3, backoff_ms=0))
    await r.start()
    assert r.state is NodeState.RUNNING and r.restarts == 1 and Recorder.instances == 2
    r.deliver_nowait("b", msg("b", 0, 7))
    r.close_input("a")
    r.close_input("b")
    await asyncio.wait_for(host.ended.wait(), TIMEOUT_S)
    assert Recorder.seen == [("b", 7)] and host.finished == ["rec"] and not host.failed


async def test_a_setup_that_keeps_failing_fails_the_node(make: Make) -> None:
    Recorder.setup_failures = 5
    r, host = make(RestartSpec(policy="on-failure", max_restarts=1, backoff_ms=0))
    await r.start()
    assert r.state is NodeState.FAILED and host.failed == [
        ("rec", "setup after restart: RuntimeError: setup failing on purpose")
    ]


async def test_the_context_carries_the_backend_override(make: Make) -> None:
    r, _ = make(backend_override={"kind": "rram", "adc_bits": 6})
    assert r.ctx.backend_override == {"kind": "rram", "adc_bits": 6}
    r2, _ = make()
    assert r2.ctx.backend_override is None
