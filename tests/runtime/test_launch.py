"""Graphs run across processes: lossless backpressure, exact drop counts, latest, timeouts, timers,
feedback cycles, kill -9 recovery, malformed input, and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from runtime.errors import GraphError
from runtime.graph import load_graph
from runtime.launcher import Launcher, RunResult

HERE = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "EDGELOOP_LOG": "WARNING"}


def graph(text: str) -> Any:
    return load_graph("test.yaml", text=text)


async def run(text: str, duration_s: float | None = None, timeout_s: float = 90.0) -> RunResult:
    launcher = Launcher(graph(text), env=ENV)
    return await asyncio.wait_for(launcher.run(duration_s), timeout=timeout_s)


def counters(result: RunResult, node: str) -> dict[str, float]:
    return result.view["nodes"][node]["counters"]


def edge(result: RunResult, name: str) -> dict[str, Any]:
    return result.view["edges"][name]


async def test_backpressure_100k_three_processes_in_order_nothing_lost() -> None:
    result = await run("""
name: bp
agents: {a: {}, b: {}, c: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000}}
  - id: relay
    uses: transform.relay
    agent: b
    inputs: {in: {from: src/out, policy: backpressure, queue: 64}}
  - id: sink
    uses: sink.counter
    agent: c
    inputs: {in: {from: relay/out, policy: backpressure, queue: 64}}
""")
    assert result.exit_code == 0, result.failures
    c = counters(result, "sink")
    assert c["received"] == 100_000
    assert c.get("out_of_order", 0) == 0 and c.get("skipped", 0) == 0
    assert c["last"] == 99_999
    assert edge(result, "relay/out -> sink/in")["dropped"] == 0
    assert edge(result, "src/out -> relay/in")["dropped"] == 0


@pytest.mark.parametrize("cross_process", [False, True], ids=["in-process", "inter-process"])
async def test_drop_oldest_counts_every_drop_exactly(cross_process: bool) -> None:
    agent_b = "b" if cross_process else "a"
    result = await run(f"""
name: overload
agents: {{a: {{}}, b: {{}}}}
nodes:
  - {{id: src, uses: source.counter, agent: a, params: {{count: 5000}}}}
  - id: sink
    uses: sink.counter
    agent: {agent_b}
    inputs: {{in: {{from: src/out, policy: drop_oldest, queue: 8}}}}
    params: {{delay_ms: 0.5}}
""")
    assert result.exit_code == 0, result.failures
    e = edge(result, "src/out -> sink/in")
    sent = result.view["outputs"]["src/out"]["sent"]
    assert sent == 5000
    assert e["dropped"] > 0, "the consumer is slower than the producer: something must drop"
    assert sent - e["received"] == e["dropped"]
    assert counters(result, "sink")["received"] == e["received"]


async def test_latest_keeps_only_the_newest() -> None:
    result = await run("""
name: latest
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 3000}}
  - id: sink
    uses: sink.counter
    agent: b
    inputs: {in: {from: src/out, policy: latest}}
    params: {delay_ms: 1}
""")
    e = edge(result, "src/out -> sink/in")
    assert e["received"] + e["dropped"] == 3000
    assert e["received"] < 3000
    # the newest message always survives: the last one delivered is the last one sent
    assert counters(result, "sink")["last"] == 2999


async def test_input_timeout_puts_actuator_in_safe_state() -> None:
    result = await run(
        """
name: stale
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 5, rate_hz: 100}}
  - id: act
    uses: actuator.console
    agent: b
    inputs:
      cmd: {from: src/out, policy: latest, timeout_ms: 100}
      tick: timer/hz/5
    params: {safe: -1}
""",
        duration_s=1.5,
    )
    c = counters(result, "act")
    assert c["commands"] == 5
    # it starts safe, leaves that state on the first command, and is safe again at the end: every
    # resume is followed by a safe entry (more than one if the loaded machine stalled the commands)
    assert c["resumes"] >= 1
    assert c["safe_entries"] == c["resumes"]
    assert c["timeouts.cmd"] == c["safe_entries"]


async def test_input_timeouts_count_simulated_time_in_a_one_process_sim_graph() -> None:
    # 6 commands 10 ms apart, a 350 ms gap, 5 more, then the end: in simulated time the gap is longer
    # than the 100 ms timeout, so the actuator goes safe in it (it would not on the wall clock: the
    # simulated gap passes in microseconds), comes back, and goes safe again when its input ends.
    text = """
name: simstale
clock: sim
nodes:
  - id: src
    uses: loopnodes:Schedule
    params: {at_ms: [0, 10, 20, 30, 40, 50, 400, 410, 420, 430, 440]}
  - id: act
    uses: actuator.console
    inputs: {cmd: {from: src/out, policy: backpressure, timeout_ms: 100}}
    params: {safe: -1, max_age_ms: 5}
"""
    runs = [counters(await run(text), "act") for _ in range(2)]
    assert runs[0] == runs[1]  # deterministic
    c = runs[0]
    assert c["commands"] == 11 and c.get("rejected_stale", 0) == 0  # max_age_ms on simulated time too
    assert c["timeouts.cmd"] == 2
    assert c["resumes"] == 2 and c["safe_entries"] == 2


async def test_a_node_working_through_a_backlog_does_not_hold_up_the_stop() -> None:
    # 300 messages arrive at once; the node takes 10 ms each without awaiting: 3 s of backlog. The
    # stop (after 0.3 s) must not wait for it: the node gives its loop a turn every few milliseconds.
    result = await run(
        """
name: backlog
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 300}}
  - id: busy
    uses: loopnodes:Blocking
    agent: b
    inputs: {in: {from: src/out, queue: 300}}
""",
        duration_s=0.3,
    )
    assert not any("killed" in f for f in result.failures), result.failures
    assert 0 < counters(result, "busy")["handled"] < 300


async def test_timer_ticks_without_gaps() -> None:
    result = await run(
        """
name: timers
nodes:
  - id: sink
    uses: sink.counter
    inputs: {tick: timer/hz/50, slow: timer/millis/250}
""",
        duration_s=1.0,
    )
    fast = edge(result, "timer/hz/50 -> sink/tick")
    slow = edge(result, "timer/millis/250 -> sink/slow")
    assert 25 <= fast["received"] <= 60
    assert 2 <= slow["received"] <= 5
    assert fast["dropped"] == 0 and slow["dropped"] == 0
    assert counters(result, "sink").get("out_of_order", 0) == 0


async def test_feedback_cycle_across_processes_runs_without_deadlock() -> None:
    result = await run("""
name: cycle
agents: {a: {}, b: {}}
nodes:
  - id: ping
    uses: loopnodes:Pinger
    agent: a
    inputs: {back: {from: echo/out, policy: backpressure}}
    params: {rounds: 500}
  - id: echo
    uses: transform.relay
    agent: b
    inputs: {in: ping/out}
""")
    assert result.exit_code == 0, result.failures
    c = counters(result, "ping")
    assert c["rounds"] == 500
    assert c.get("mismatch", 0) == 0


async def _wait_for(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)  # polling a condition with a deadline, not sleeping as synchronisation


async def test_kill_9_worker_is_restarted_and_graph_goes_on() -> None:
    launcher = Launcher(
        graph("""
name: restart
agents:
  a: {}
  b: {restart: {policy: on-failure, max_restarts: 3, backoff_ms: 50}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000, rate_hz: 500}}
  - {id: relay, uses: transform.relay, agent: b, inputs: {in: src/out}}
  - {id: sink, uses: sink.counter, agent: a, inputs: {in: relay/out}, params: {check_order: false}}
"""),
        env=ENV,
    )
    view: dict[str, Any] = {}
    launcher.on_stats = view.update
    task = asyncio.create_task(launcher.run(None))
    received = lambda: view.get("nodes", {}).get("sink", {}).get("counters", {}).get("received", 0)  # noqa: E731
    await _wait_for(lambda: received() > 100, 30, "the first messages")
    os.kill(launcher.agents["b"].proc.pid, signal.SIGKILL)
    await _wait_for(lambda: launcher.agents["b"].restarts == 1, 10, "the restart")
    before = received()
    await _wait_for(lambda: received() > before + 200, 30, "messages after the restart")
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 10)
    assert result.restarts["b"] == 1
    assert any("exited unexpectedly" in f for f in result.failures)
    assert result.exit_code == 0  # recovered per policy


async def test_kill_9_with_standby_restarts_from_the_warm_spare() -> None:
    launcher = Launcher(
        graph("""
name: standby
agents:
  a: {}
  b: {restart: {policy: on-failure, max_restarts: 3, backoff_ms: 0}, standby: true}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000, rate_hz: 500}}
  - {id: relay, uses: transform.relay, agent: b, inputs: {in: src/out}}
  - {id: sink, uses: sink.counter, agent: a, inputs: {in: relay/out}, params: {check_order: false}}
"""),
        env=ENV,
    )
    view: dict[str, Any] = {}
    launcher.on_stats = view.update
    task = asyncio.create_task(launcher.run(None))
    b = launcher.agents["b"]
    received = lambda: view.get("nodes", {}).get("sink", {}).get("counters", {}).get("received", 0)  # noqa: E731
    await _wait_for(lambda: received() > 100 and b.spare is not None, 30, "messages and b's spare")
    spare = b.spare
    assert spare is not None and spare.poll() is None
    os.kill(b.proc.pid, signal.SIGKILL)
    await _wait_for(lambda: b.restarts == 1 and b.state == "running", 20, "the restart")
    assert b.proc is spare  # the spare became incarnation 1: no new interpreter was started for it
    await _wait_for(lambda: b.spare is not None and b.spare is not spare, 20, "a new spare")
    before = received()
    await _wait_for(lambda: received() > before + 200, 30, "messages after the restart")
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 10)
    assert result.restarts["b"] == 1 and result.exit_code == 0
    assert b.spare is None and spare.poll() is not None  # no process left behind


async def test_a_dead_spare_is_not_replaced_and_restarts_fall_back_to_a_new_process() -> None:
    launcher = Launcher(
        graph("""
name: standby2
agents:
  a: {}
  b: {restart: {policy: on-failure, max_restarts: 3, backoff_ms: 0}, standby: true}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000, rate_hz: 500}}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}, params: {check_order: false}}
"""),
        env=ENV,
    )
    task = asyncio.create_task(launcher.run(None))
    b = launcher.agents["b"]
    await _wait_for(lambda: b.spare is not None, 30, "b's spare")
    spare = b.spare
    assert spare is not None
    os.kill(spare.pid, signal.SIGKILL)  # a spare that dies before it is needed (e.g. cannot import)
    await _wait_for(lambda: b.spare_failed, 10, "the dead spare to be noticed")
    old = b.proc
    os.kill(b.proc.pid, signal.SIGKILL)
    await _wait_for(lambda: b.restarts == 1 and b.state == "running", 30, "the restart")
    assert b.proc is not old and b.proc is not spare and b.spare is None
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 10)
    assert result.restarts["b"] == 1


def test_standby_without_restart_policy_is_a_spec_error() -> None:
    with pytest.raises(GraphError, match="standby"):
        graph("""
name: bad
agents: {b: {standby: true}}
nodes:
  - {id: src, uses: source.counter, agent: b}
""")


async def test_agent_without_restart_policy_fails_the_run() -> None:
    launcher = Launcher(
        graph("""
name: norestart
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000, rate_hz: 200}}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}}
"""),
        env=ENV,
    )
    task = asyncio.create_task(launcher.run(None))
    await asyncio.wait_for(launcher.started.wait(), 30)
    os.kill(launcher.agents["b"].proc.pid, signal.SIGKILL)
    await _wait_for(lambda: launcher.agents["b"].state == "exited", 10, "the exit to be seen")
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 10)
    assert result.exit_code == 1


async def test_node_exception_fails_run_and_names_node() -> None:
    result = await run("""
name: failing
nodes:
  - {id: src, uses: source.counter, params: {count: 100}}
  - {id: bad, uses: transform.relay, inputs: {in: {from: src/out, policy: backpressure}}, params: {fail_after: 10}}
""")
    assert result.exit_code == 1
    assert any("node 'bad'" in f and "failing on purpose" in f for f in result.failures)


async def test_malformed_wire_messages_are_counted_and_dropped() -> None:
    launcher = Launcher(
        graph("""
name: garbage
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000, rate_hz: 200}}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}}
"""),
        env=ENV,
    )
    task = asyncio.create_task(launcher.run(None))
    await asyncio.wait_for(launcher.started.wait(), 30)
    ctx = zmq.asyncio.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    push.connect(launcher.wiring.inbox["b"])
    garbage = [
        [b"x"],
        [b"src/out", b"\xc1\xc1"],
        [b"src/out", msgpack.packb({"k": "m"})],
        [b"src/out", msgpack.packb([1, 2])],
        [b"\xff\xfe", b""],
    ]
    for frames in garbage:
        await push.send_multipart(frames)
    push.close()
    ctx.term()
    view: dict[str, Any] = {}
    launcher.on_stats = view.update
    await _wait_for(
        lambda: view.get("agents", {}).get("b", {}).get("malformed", 0) >= len(garbage),
        10,
        "the malformed count",
    )
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 10)
    assert result.view["agents"]["b"]["malformed"] == len(garbage)
    assert result.exit_code == 0
    assert result.view["nodes"]["sink"]["state"] == "running"


async def test_stop_ten_nodes_in_three_processes_is_prompt() -> None:
    nodes = "\n".join(
        f"  - {{id: r{i}, uses: transform.relay, agent: {'abc'[i % 3]}, inputs: {{in: {'src/value' if i == 0 else f'r{i - 1}/out'}}}}}"
        for i in range(8)
    )
    launcher = Launcher(
        graph(f"""
name: stop
agents: {{a: {{}}, b: {{}}, c: {{}}}}
nodes:
  - {{id: src, uses: signal.sine, agent: a, params: {{rate_hz: 1000}}}}
{nodes}
  - {{id: sink, uses: sink.counter, agent: c, inputs: {{in: r7/out}}}}
"""),
        env=ENV,
    )
    task = asyncio.create_task(launcher.run(None))
    await asyncio.wait_for(launcher.started.wait(), 30)
    t0 = time.monotonic()
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 10)
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0  # generous bound for a loaded CI machine; the 1 s figure is measured in bench
    assert result.exit_code == 0, result.failures
    assert not any("killed" in f for f in result.failures)
