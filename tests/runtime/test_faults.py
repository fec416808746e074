"""Fault injection (issue 17): a hostile local peer, code in the current directory, native panics, a full
disk and floods. Each test fails on a runtime without the protection it names."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from runtime.codec import decode as decode_frames
from runtime.codec import encode as encode_frames
from runtime.control import Bye, ControlMessage, NodeFailed, Stats, encode
from runtime.errors import CodecError, GraphError, RecordingError
from runtime.graph import load_graph
from runtime.launcher import Launcher, RunResult
from runtime.message import Message
from runtime.qos import MAX_SEQ_JUMP, EdgeStats
from runtime.recording import RecordingReader

pytestmark = pytest.mark.faults

HERE = Path(__file__).resolve().parent
ENV = {
    "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    "EDGELOOP_LOG": os.environ.get("EDGELOOP_TEST_LOG", "ERROR"),
}


async def _until(cond: Callable[[], bool], task: asyncio.Task[Any], timeout_s: float, what: str) -> None:
    """Wait for `cond` on the launcher's own callbacks (polled at the event loop's pace, bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if loop.time() > deadline or task.done():
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _launcher(text: str, **kw: Any) -> Launcher:
    return Launcher(load_graph("faults.yaml", text=text), env={**ENV, **kw.pop("env", {})}, **kw)


# ----- 1. the control channel: a local peer cannot pose as an agent -----

STREAM = """
name: faults
nodes:
  - {id: src, uses: source.counter, params: {count: 10000000, rate_hz: 500}}
  - {id: sink, uses: sink.counter, inputs: {in: src/out}}
"""


async def test_a_peer_posing_as_an_agent_is_dropped_and_counted() -> None:
    launcher = _launcher(STREAM)
    task = asyncio.create_task(launcher.run(None))
    seen: list[tuple[str, ControlMessage]] = []
    ctx = zmq.asyncio.Context()
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.setsockopt(zmq.IDENTITY, b"main")  # the agent's name: what a worker used to present
    forged = [
        Stats("main", 0, {"edges": {"src/out -> sink/in": {"received": 1}}}),  # crashed the summary
        NodeFailed("main", 0, "sink", "on_input", "forged failure"),
        Bye("main", 0, 0, {}),  # emptied the summary
    ]
    try:
        await asyncio.wait_for(launcher.started.wait(), 30)
        launcher.on_control = lambda name, m: seen.append((name, m))
        rogue.connect(launcher.wiring.control)
        for msg in forged:
            await rogue.send(encode(msg))
        await _until(lambda: launcher.control_dropped >= len(forged), task, 10, "the forged messages dropped")
        n = len(seen)
        await _until(lambda: len(seen) > n, task, 10, "the real worker's messages after the forgery")
    finally:
        launcher.stop_requested.set()
        result: RunResult = await asyncio.wait_for(task, 15)
        rogue.close()
        ctx.term()
    assert launcher.control_dropped == len(forged)
    assert not any(isinstance(m, NodeFailed) or (isinstance(m, Bye) and not m.snapshot) for _, m in seen)
    assert "forged failure" not in " ".join(result.failures)
    assert result.exit_code == 0, result.failures
    assert result.view["nodes"]["sink"]["counters"]["received"] > 0


# ----- 2. workers start without the current directory on the import path -----


async def test_a_runtime_package_in_the_current_directory_does_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "cwd"
    (evil / "runtime").mkdir(parents=True)
    (evil / "runtime" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    (evil / "loopnodes.py").write_text(f"open({str(marker)!r}, 'w').write('pwned too')\n")
    monkeypatch.chdir(evil)
    # A node class from the test-provided PYTHONPATH (`loopnodes:Schedule`) still loads in the workers.
    launcher = _launcher("""
name: cwd
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: "loopnodes:Schedule", agent: a, params: {at_ms: [0, 1, 2, 3]}}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: {from: src/out, policy: backpressure}}}
""")
    result = await asyncio.wait_for(launcher.run(None), 60)
    assert not marker.exists(), marker.read_text()
    assert result.exit_code == 0, result.failures
    assert result.view["nodes"]["sink"]["counters"]["received"] == 4


# ----- 3. native panics (BaseException) are node failures -----


async def test_a_panicking_source_fails_its_node_after_its_restarts() -> None:
    result = await asyncio.wait_for(
        _launcher("""
name: panic
nodes:
  - id: src
    uses: "faultnodes:PanickingSource"
    params: {before: 3}
    restart: {policy: on-failure, max_restarts: 2, backoff_ms: 1}
  - {id: sink, uses: sink.counter, inputs: {in: {from: src/out, policy: backpressure}}}
""").run(None),
        60,
    )
    src = result.view["nodes"]["src"]
    assert (src["state"], src["restarts"], src["failures"]) == ("failed", 2, 3)
    assert "run: Panic: the native decoder panicked" in src["error"]
    assert any("node 'src'" in f and "Panic" in f for f in result.failures), result.failures
    assert result.exit_code == 1
    assert result.view["nodes"]["sink"]["counters"]["received"] == 9  # 3 incarnations, 3 each


async def test_a_panicking_hook_fails_its_node() -> None:
    result = await asyncio.wait_for(
        _launcher("""
name: panic
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 5}}
  - id: sink
    uses: "faultnodes:PanickingSink"
    agent: b
    params: {at: 2}
    inputs: {in: {from: src/out, policy: backpressure}}
""").run(None),
        60,
    )
    sink = result.view["nodes"]["sink"]
    assert sink["state"] == "failed" and "on_input: Panic: panicked on message 2" in sink["error"]
    assert result.exit_code == 1


async def test_a_corrupt_aedat4_header_panics_in_rust_and_fails_the_replay_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "corrupt.aedat4"
    # The magic, then a 10-byte "header" whose flatbuffer offsets point outside it: aedat panics.
    path.write_bytes(b"#!AER-DAT4.0\r\n" + (10).to_bytes(4, "little") + b"\xff" * 10)
    launcher = _launcher(
        f"""
name: corrupt
nodes:
  - {{id: cam, uses: event_camera.replay, params: {{path: "{path}"}}}}
  - {{id: sink, uses: sink.counter, inputs: {{in: cam/events}}}}
""",
        env={"RUST_BACKTRACE": "0"},
    )
    result = await asyncio.wait_for(launcher.run(None), 60)
    cam = result.view["nodes"]["cam"]
    assert cam["state"] == "failed"
    assert "setup: PanicException" in cam["error"] and f"(file {path})" in cam["error"], cam["error"]
    assert result.exit_code == 1


# ----- 4. a full disk fails the recorder loudly; the file keeps what was flushed -----


async def test_a_write_error_fails_the_recorder_with_its_count_and_the_file_stays_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.mcap"
    # The recorder's worker may write files of 64 KiB at most (RLIMIT_FSIZE): past it, EFBIG, as a
    # full disk gives ENOSPC. Small chunks, so several are flushed before the limit.
    result = await asyncio.wait_for(
        _launcher(f"""
name: full
agents: {{a: {{}}, rec: {{}}}}
nodes:
  - {{id: src, uses: source.counter, agent: a, params: {{count: 20000}}}}
  - {{id: limit, uses: "faultnodes:FileSizeLimit", agent: rec, params: {{bytes: 65536}}, inputs: {{in: src/out}}}}
  - id: recorder
    uses: record.mcap
    agent: rec
    params: {{path: "{path}", compression: none, chunk_kb: 4}}
    inputs: {{src_out: {{from: src/out, policy: backpressure}}}}
""").run(None),
        90,
    )
    rec = result.view["nodes"]["recorder"]
    assert rec["state"] == "failed", rec
    m = re.search(r"failed after (\d+) messages recorded \((.+?)\); the file stays readable", rec["error"])
    assert m is not None, rec["error"]
    recorded, why = int(m[1]), m[2]
    assert why == os.strerror(errno.EFBIG) and 0 < recorded < 20_000
    assert recorded == rec["counters"]["recorded"]
    assert any("node 'recorder'" in f for f in result.failures) and result.exit_code == 1
    readable = 0
    with contextlib.suppress(RecordingError):  # a cut-short file: every complete message, then this
        for _ in RecordingReader(path).entries():
            readable += 1
    assert 0 < readable <= recorded


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
async def test_a_full_disk_fails_the_recorder_even_when_no_message_follows_the_fault() -> None:
    # /dev/full takes the open and fails every write with ENOSPC; the 5 messages fit one chunk, so
    # the fault shows at a flush (the timer's, or the summary's at teardown), never at a message.
    result = await asyncio.wait_for(
        _launcher("""
name: full
agents: {a: {}, rec: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 5}}
  - id: recorder
    uses: record.mcap
    agent: rec
    params: {path: /dev/full, flush_s: 0.01}
    inputs: {src_out: {from: src/out, policy: backpressure}}
""").run(None),
        60,
    )
    rec = result.view["nodes"]["recorder"]
    assert rec["state"] == "failed", rec
    assert f"({os.strerror(errno.ENOSPC)})" in rec["error"] and "messages recorded" in rec["error"]
    assert result.exit_code == 1


# ----- 5. limits: tap subscriptions, message size, implausible sequence numbers and times -----

TWO_AGENTS = """
name: limits
agents: {a: {}, b: {}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 10000000, rate_hz: 1000}}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}}
"""


def _received(launcher: Launcher) -> int:
    return int(
        launcher.snapshots.get("b", {})
        .get("nodes", {})
        .get("sink", {})
        .get("counters", {})
        .get("received", 0)
    )


async def test_a_tap_subscription_flood_is_ignored_counted_and_the_data_path_flows() -> None:
    launcher = _launcher(TWO_AGENTS, env={"EDGELOOP_MAX_TAP_SUBSCRIPTIONS": "1"})
    task = asyncio.create_task(launcher.run(None))
    ctx = zmq.asyncio.Context()
    tool, second, flood, huge = (ctx.socket(zmq.SUB) for _ in range(4))
    for s in (tool, second, flood, huge):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)  # every subscription reaches the tap (a SUB drops them at its HWM)
    n_flood = 5000
    try:
        await asyncio.wait_for(launcher.started.wait(), 30)
        tap = launcher.wiring.tap["a"]
        tool.connect(tap)
        tool.setsockopt(zmq.SUBSCRIBE, b"src/out")  # a real tool, subscribed first: within the cap
        assert await tool.poll(10_000), "the tool got nothing from the tap"
        await _until(lambda: "a" in launcher.snapshots, task, 10, "agent a's statistics")
        rss_before = launcher.snapshots["a"]["rss"]
        huge.connect(tap)  # subscriptions over the tap's frame limit: disconnected before they are read
        for i in range(n_flood):
            huge.setsockopt(zmq.SUBSCRIBE, f"{i:06d}".encode() * 200)
        flood.connect(tap)  # short ones: read, ignored (no topic of this agent) and counted
        for i in range(n_flood):
            flood.setsockopt(zmq.SUBSCRIBE, f"{i:06d}".encode())
        second.connect(tap)
        second.setsockopt(zmq.SUBSCRIBE, b"src/out")  # a real topic, over the cap of 1: ignored
        await _until(
            lambda: launcher.snapshots["a"]["tap_ignored"] >= n_flood + 1,
            task,
            30,
            "the subscriptions counted",
        )
        # The data path flows after the flood: the sink receives more, the tool still gets its topic.
        after = _received(launcher)
        await _until(lambda: _received(launcher) > after + 50, task, 30, "the sink receiving after the flood")
        while await tool.poll(0):  # what the tap had queued before
            await tool.recv_multipart()
        assert await tool.poll(10_000), "the tool got nothing after the flood"
        assert (await tool.recv_multipart())[0] == b"src/out"
        rss_after = launcher.snapshots["a"]["rss"]
    finally:
        launcher.stop_requested.set()
        result = await asyncio.wait_for(task, 15)
        for s in (tool, second, flood, huge):
            s.close()
        ctx.term()
    assert result.view["agents"]["a"]["tap_ignored"] == n_flood + 1
    # 5000 short subscriptions and none of the 1.2 KiB ones kept: far below 5000 x 1.2 KiB x ~50.
    assert rss_after - rss_before < 16 * 1024 * 1024, (rss_before, rss_after)
    assert result.exit_code == 0, result.failures


async def test_oversized_frames_and_implausible_messages_are_refused() -> None:
    launcher = _launcher(TWO_AGENTS, env={"EDGELOOP_MAX_MESSAGE_BYTES": str(1 << 20)})
    task = asyncio.create_task(launcher.run(None))
    ctx = zmq.asyncio.Context()
    big, rogue = ctx.socket(zmq.PUSH), ctx.socket(zmq.PUSH)
    for s in (big, rogue):
        s.setsockopt(zmq.LINGER, 0)
    monitor = big.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        await asyncio.wait_for(launcher.started.wait(), 30)
        inbox = launcher.wiring.inbox["b"]
        big.connect(inbox)
        await big.send_multipart([b"src/out", b"\x00" * (2 << 20)])  # 2 MiB: over the 1 MiB limit
        # The worker drops the connection at the frame's length, before reading it: the sender sees it.
        assert await monitor.poll(20_000), "the oversized frame's sender was not disconnected"
        rogue.connect(inbox)
        now = time.time_ns()
        await rogue.send_multipart(encode_frames(Message("src/out", 10**12, now, now, 1)))  # a seq from afar
        hour = 3600 * 10**9
        await rogue.send_multipart(
            encode_frames(Message("src/out", 0, now + hour, now + hour, 1))
        )  # the future
        await _until(
            lambda: launcher.snapshots["b"]["malformed"] >= 2, task, 20, "the forged messages counted"
        )
        after = _received(launcher)
        await _until(lambda: _received(launcher) > after + 50, task, 30, "the sink receiving afterwards")
    finally:
        launcher.stop_requested.set()
        result = await asyncio.wait_for(task, 15)
        big.disable_monitor()
        monitor.close()
        big.close()
        rogue.close()
        ctx.term()
    assert result.view["agents"]["b"]["malformed"] == 2  # the oversized frame never reached the decoder
    e = result.view["edges"]["src/out -> sink/in"]
    assert e["dropped"] < 1000, e  # not a billion drops
    assert e["latency"]["max_us"] < 60e6, e  # no message from the future was timed
    assert result.exit_code == 0, result.failures


def test_an_implausible_sequence_jump_is_refused_and_leaves_the_count_alone() -> None:
    st = EdgeStats("src/out -> sink/in")
    assert st.observe_seq("src/out", 0, 0) and st.observe_seq("src/out", 0, 1)
    assert not st.observe_seq("src/out", 0, 10**12)  # forged: not a trillion drops
    assert not st.observe_seq("src/out", 7, MAX_SEQ_JUMP + 1)  # a new incarnation starts at 0 too
    assert st.observe_seq("src/out", 0, 2 + MAX_SEQ_JUMP)  # the largest gap still believed
    assert st.dropped_gap == MAX_SEQ_JUMP


@pytest.mark.parametrize(("seq", "inc"), [(-1, 0), (0, -1)])
def test_a_negative_sequence_or_incarnation_is_malformed(seq: int, inc: int) -> None:
    frames = encode_frames(Message("src/out", seq, 0, 0, 1), incarnation=inc)
    with pytest.raises(CodecError, match="must be >= 0"):
        decode_frames(frames)


async def test_a_limit_set_wrong_in_the_environment_is_named_at_start_up(
    capfd: pytest.CaptureFixture[str],
) -> None:
    launcher = _launcher(TWO_AGENTS, env={"EDGELOOP_MAX_MESSAGE_BYTES": "lots", "EDGELOOP_LOG": "ERROR"})
    with pytest.raises(GraphError, match="exited during start-up"):
        await asyncio.wait_for(launcher.run(None), 60)
    assert "EDGELOOP_MAX_MESSAGE_BYTES='lots': must be a positive whole number" in capfd.readouterr().err
