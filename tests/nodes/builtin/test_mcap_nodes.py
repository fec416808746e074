"""The recorder and replay nodes in a harness: windows, loops, pacing on a simulated clock, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nodes.builtin.recording import McapRecorder, McapReplay
from runtime.clock import SimClock
from runtime.errors import RecordingError
from runtime.message import Message
from runtime.recording import GRAPH_METADATA, STATS_METADATA, RecordingReader, RecordingWriter
from runtime.testing import NodeHarness

T0 = 1_700_000_000_000_000_000  # recorded wall times (ns)
MS = 1_000_000


def record(path: Path, n: int = 400, period_ms: int = 1, lag_ns: int = 50_000) -> None:
    """`cam/out` emitted every `period_ms`, sensed `lag_ns` before; `imu/out` every 10th."""
    with RecordingWriter(path, chunk_bytes=2048) as w:
        for i in range(n):
            t = T0 + i * period_ms * MS
            w.write(Message("cam/out", i, t - lag_ns, t, {"i": i, "a": np.full(3, i, np.int32)}))
            if i % 10 == 0:
                w.write(Message("imu/out", i // 10, t - lag_ns, t, float(i)))


async def replay(path: Path, clock: SimClock | None = None, **params: object) -> NodeHarness:
    h = NodeHarness(McapReplay, {"path": str(path), **params}, node_id="cam", clock=clock)
    async with h:
        await h.run_source(timeout_s=20)
    return h


async def test_recorder_writes_what_it_receives(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    async with NodeHarness(
        McapRecorder,
        {
            "path": str(path),
            "topics": ["harness/x", "never/spoke"],
            "metadata": {"name": "g"},
            "compression": "lz4",
        },
    ) as h:
        for i in range(50):
            await h.send("x", {"i": i}, t_sense_ns=T0 + i)
    reader = RecordingReader(path)
    got = [(m.topic, m.seq, m.t_sense_ns, m.payload) for _, m in reader.messages()]
    assert got == [("harness/x", i, T0 + i, {"i": i}) for i in range(50)]
    assert {c.topic for c in reader.channels.values()} == {"harness/x", "never/spoke"}
    assert reader.metadata[GRAPH_METADATA] == {"name": "g"}
    assert json.loads(reader.metadata[STATS_METADATA]["received"]) == {"harness/x": 50, "never/spoke": 0}
    assert h.ctx.counters["recorded"] == 50


async def test_replay_default_topics_keep_payloads_and_recorded_sensing_times(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    record(path, n=100)
    h = await replay(path, speed=0)
    assert [p["i"] for p in h.payloads("out")] == list(range(100))
    assert [m.t_sense_ns for m in h.outputs["out"]] == [T0 + i * MS - 50_000 for i in range(100)]
    assert h.outputs["out"][7].payload["a"].tolist() == [7, 7, 7]
    assert h.ctx.counters["replayed"] == 100 and h.ctx.counters["passes"] == 1


async def test_window_is_seconds_after_the_first_message(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    record(path, n=400)
    h = await replay(path, speed=0, start_s=0.1, end_s=0.2, topics={"out": "cam/out", "slow": "imu/out"})
    assert [p["i"] for p in h.payloads("out")] == list(range(100, 201))
    assert h.payloads("slow") == [float(i) for i in range(100, 201, 10)]


async def test_speed_paces_on_the_run_clock(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    record(path, n=50, period_ms=4)
    clock = SimClock(start_ns=5 * 10**9)
    h = await replay(path, clock=clock, speed=2.0, start_s=0.02, timestamps="replay")
    out = h.outputs["out"]
    assert [m.payload["i"] for m in out] == list(range(5, 50))
    # recorded every 4 ms, played at 2×: emitted every 2 ms on the simulated clock, from the window start
    t_go = out[0].t_emit_ns
    assert [m.t_emit_ns - t_go for m in out] == [k * 2 * MS for k in range(45)]
    # retimed sensing times: the same mapping, so the 50 µs sensing lag becomes 25 µs
    assert [m.t_sense_ns - m.t_emit_ns for m in out] == [-25_000] * 45


async def test_loops_repeat_the_window_and_retimed_time_keeps_rising(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    record(path, n=30)
    h = await replay(path, speed=0, loops=3, timestamps="replay")
    assert [p["i"] for p in h.payloads("out")] == list(range(30)) * 3
    t = [m.t_sense_ns for m in h.outputs["out"]]
    assert all(b > a for a, b in zip(t, t[1:], strict=False))
    assert h.ctx.counters["passes"] == 3


async def test_loop_forever_stops_with_the_graph(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    record(path, n=20)
    h = NodeHarness(McapReplay, {"path": str(path), "speed": 0, "loops": 0}, node_id="cam")
    async with h:
        await h.run_source(max_messages=130, timeout_s=20)
    assert len(h.outputs["out"]) == 130


async def test_replay_of_a_truncated_file_emits_every_complete_message_then_fails(tmp_path: Path) -> None:
    full, cut = tmp_path / "full.mcap", tmp_path / "cut.mcap"
    record(full, n=400)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    h = NodeHarness(McapReplay, {"path": str(cut), "speed": 0}, node_id="cam")
    async with h:
        with pytest.raises(RecordingError, match=r"truncated at byte .* delivered \d+ complete"):
            await h.run_source(timeout_s=20)
    got = [p["i"] for p in h.payloads("out")]
    assert 100 < len(got) < 400 and got == list(range(len(got)))


async def test_setup_names_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    record(path, n=5)
    with pytest.raises(RecordingError, match="has no topic lidar/points; recorded topics: cam/out, imu/out"):
        async with NodeHarness(McapReplay, {"path": str(path), "topics": {"out": "lidar/points"}}):
            pass
    with pytest.raises(RecordingError, match=r"has no topic 'lidar/…'"):
        async with NodeHarness(McapReplay, {"path": str(path)}, node_id="lidar"):
            pass
    csv = tmp_path / "walk.csv"
    csv.write_text("t_s,ax,ay\n0,1,2\n0.1,1,2\n")
    with pytest.raises(RecordingError, match="not an MCAP recording: it is a CSV text file"):
        async with NodeHarness(McapReplay, {"path": str(csv)}):
            pass
