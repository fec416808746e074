"""Sensor, window and representation nodes through NodeHarness (no sockets, no wall-clock asserts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from nodes.builtin.event_camera import EventCameraReplay, SyntheticEventCameraSource
from nodes.builtin.imu import ImuReplay, SyntheticImuSource
from nodes.builtin.representation import EventFrame, EventTokens, TimeSurfaceNode, VoxelGrid
from nodes.builtin.window import Window
from nodes.sensors.events import (
    EVENT_DTYPE,
    IMU_DTYPE,
    AedatReader,
    event_frame,
    make_events,
    time_surface,
    voxel_grid,
)
from nodes.sensors.imu import ImuRecording, SyntheticImu, read_imu_csv, resample, write_imu_csv
from runtime.clock import SimClock
from runtime.errors import NodeError, RecordingError
from runtime.message import Message, Payload
from runtime.testing import NodeHarness


async def _start_source(h: NodeHarness, port: str, n: int) -> asyncio.Future[None]:
    """Run the source in the background until it has emitted `n` messages on `port` (bounded)."""
    task = asyncio.ensure_future(h.run_source(timeout_s=60))
    for _ in range(100_000):
        if len(h.outputs[port]) >= n or task.done():
            break
        await asyncio.sleep(0)
    return task


@pytest.fixture
def sample(shared_data: Path) -> Path:
    return shared_data / "dvxplorer_sample.aedat4"


async def test_replay_speed0_is_lossless(sample: Path) -> None:
    async with NodeHarness(EventCameraReplay, {"path": str(sample), "window_us": 10_000, "speed": 0}) as h:
        await h.run_source(timeout_s=60)
    batches = h.payloads("events")
    ev = np.concatenate([b["events"] for b in batches])
    assert len(ev) == 111_954 and int(ev["p"].sum()) == 55_023
    assert np.array_equal(ev, AedatReader(sample).read_all().events)
    assert {(b["width"], b["height"]) for b in batches} == {(320, 240)}
    assert all(b["t1_us"] - b["t0_us"] == 10_000 for b in batches)
    imu = np.concatenate(h.payloads("imu"))
    assert imu.dtype == IMU_DTYPE and len(imu) == 475
    seqs = [m.seq for m in h.outputs["events"]]
    assert seqs == list(range(len(batches)))
    t_sense = [m.t_sense_ns for m in h.outputs["events"]]
    assert t_sense == sorted(t_sense)


async def test_replay_paced_on_a_simulated_clock(sample: Path) -> None:
    clock = SimClock(start_ns=1_000_000_000)
    params = {"path": str(sample), "window_us": 50_000, "speed": 2.0, "end_us": 300_000}
    async with NodeHarness(EventCameraReplay, params, clock=clock) as h:
        await h.run_source(timeout_s=30)
    msgs = h.outputs["events"]
    assert len(msgs) == 6
    # window i ends at 50 ms·(i+1) of recording, due at half that on the run clock (speed 2)
    assert [m.t_sense_ns - 1_000_000_000 for m in msgs] == [25_000_000 * (i + 1) for i in range(6)]
    assert all(m.t_emit_ns == m.t_sense_ns for m in msgs)


async def test_replay_count_roi_and_period_control(sample: Path) -> None:
    async with NodeHarness(
        EventCameraReplay, {"path": str(sample), "count": 10_000, "speed": 0, "roi": [0, 0, 160, 120]}
    ) as h:
        await h.run_source(timeout_s=60)
    ev = np.concatenate([b["events"] for b in h.payloads("events")])
    assert 0 < len(ev) < 111_954 and ev["x"].max() < 160 and ev["y"].max() < 120
    async with NodeHarness(EventCameraReplay, {"path": str(sample), "window_us": 1_000, "speed": 0}) as h:
        task = await _start_source(h, "events", 3)
        await h.send("period_us", 100_000)
        await h.send("roi", [10, 10, 90, 60])
        await h.send("roi", "garbage")  # ignored with a warning, the sensor keeps running
        await task
    spans = [b["t1_us"] - b["t0_us"] for b in h.payloads("events")]
    assert spans[:3] == [1_000] * 3 and spans[-2] == 100_000
    assert h.ctx.counters["bad_control"] == 1
    late = np.concatenate([b["events"] for b in h.payloads("events")[4:]])
    assert len(late) and late["x"].min() >= 10 and late["x"].max() < 90 and late["y"].max() < 60


async def test_replay_loop_keeps_time_increasing(sample: Path) -> None:
    params = {"path": str(sample), "window_us": 100_000, "speed": 0, "loop": True}
    async with NodeHarness(EventCameraReplay, params) as h:
        await h.run_source(max_messages=40, timeout_s=60)
    batches = h.payloads("events")
    assert len(batches) >= 14  # more than two passes of 6 windows
    ev = np.concatenate([b["events"] for b in batches])
    assert bool(np.all(np.diff(ev["t"]) >= 0))
    assert all(a["t1_us"] == b["t0_us"] for a, b in zip(batches, batches[1:], strict=False))


async def test_replay_truncated_and_wrong_files(sample: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(sample.read_bytes()[:500_000])
    async with NodeHarness(EventCameraReplay, {"path": str(cut), "speed": 0}) as h:
        with pytest.raises(RecordingError, match="truncated or corrupt after"):
            await h.run_source(timeout_s=60)
    delivered = sum(len(b["events"]) for b in h.payloads("events"))
    assert 40_000 < delivered < 111_954
    bad = tmp_path / "x.aedat4"
    bad.write_text("t,x,y,p\n")
    with pytest.raises(RecordingError, match="expected an AEDAT4 recording"):
        async with NodeHarness(EventCameraReplay, {"path": str(bad)}):
            pass


async def test_synthetic_camera_source() -> None:
    params = {
        "width": 32,
        "height": 32,
        "scene": "gestures",
        "period_us": 20_000,
        "speed": 0,
        "duration_us": 200_000,
        "seed": 1,
    }
    async with NodeHarness(SyntheticEventCameraSource, params) as h:
        await h.run_source(timeout_s=60)
    batches = h.payloads("events")
    assert len(batches) == 10 and len(h.payloads("label")) == 10
    assert all(isinstance(lab, int) and 0 <= lab < 8 for lab in h.payloads("label"))
    ev = np.concatenate([b["events"] for b in batches])
    assert ev.dtype == EVENT_DTYPE and len(ev) > 0 and ev["t"].max() <= 200_000
    async with NodeHarness(SyntheticEventCameraSource, params) as h2:
        await h2.run_source(timeout_s=60)
    assert np.array_equal(ev, np.concatenate([b["events"] for b in h2.payloads("events")]))


async def test_synthetic_camera_targets_control() -> None:
    params = {
        "width": 32,
        "height": 32,
        "scene": "targets",
        "period_us": 10_000,
        "speed": 0,
        "shot_noise_hz": 0.0,
        "leak_hz": 0.0,
    }
    async with NodeHarness(SyntheticEventCameraSource, params) as h:
        await h.send("targets", [{"x": 8.0, "y": 8.0, "radius": 3.0}])
        await h.run_source(max_messages=2, timeout_s=30)
        await h.send("targets", [{"x": 24.0, "y": 8.0, "radius": 3.0}])
        h.ctx.stop_event.clear()
        await h.run_source(max_messages=4, timeout_s=30)
    counts = [len(b["events"]) for b in h.payloads("events")]
    assert counts[0] > 0 and counts[-1] > 0  # a target appeared, then jumped


async def test_imu_replay_csv_and_aedat(tmp_path: Path, sample: Path) -> None:
    rec = SyntheticImu([("walking", 2), ("standing", 2)], subject_seed=0, rate_hz=50).recording()
    path = tmp_path / "imu.csv"
    write_imu_csv(path, rec)
    async with NodeHarness(ImuReplay, {"path": str(path), "speed": 0}) as h:
        await h.run_source(timeout_s=60)
    samples = np.stack(h.payloads("sample"))
    assert samples.shape == (200, 6) and samples.dtype == np.float32
    np.testing.assert_allclose(samples[:, :3], rec.accel, atol=1e-5)
    assert rec.labels is not None and h.payloads("label") == rec.labels.tolist()
    async with NodeHarness(ImuReplay, {"path": str(path), "speed": 0, "rate_hz": 25}) as h:
        await h.run_source(timeout_s=60)
    assert len(h.payloads("sample")) == 100
    async with NodeHarness(ImuReplay, {"path": str(sample), "speed": 0}) as h:
        await h.run_source(timeout_s=60)
    assert len(h.payloads("sample")) == 475 and h.payloads("label") == []
    clock = SimClock(0)
    async with NodeHarness(ImuReplay, {"path": str(path), "speed": 1, "loop": True}, clock=clock) as h:
        await h.run_source(max_messages=2 * 450, timeout_s=60)
    t = [m.t_sense_ns for m in h.outputs["sample"]]
    assert np.allclose(np.diff(t), 20_000_000)  # 50 Hz, straight through the loop seam


class _SmallChunks(ImuReplay):
    chunk_rows = 16


def _jittered_imu_csv(path: Path, n: int = 600) -> ImuRecording:
    """A labelled recording with sample times 10–30 ms apart, so no resampled time lines up."""
    rec = SyntheticImu([("walking", 8), ("sitting", 8)], subject_seed=1, rate_hz=50).recording()
    t = np.round(np.cumsum(np.random.default_rng(3).uniform(0.01, 0.03, n)), 6)
    write_imu_csv(path, ImuRecording(t, rec.accel[:n], rec.gyro[:n], rec.labels[:n]))  # type: ignore[index]
    return read_imu_csv(path)


@pytest.mark.parametrize("rate_hz", [None, 30.0])
async def test_imu_replay_streamed_in_small_chunks_equals_the_whole_file(
    tmp_path: Path, rate_hz: float | None
) -> None:
    whole = _jittered_imu_csv(tmp_path / "imu.csv")
    rec = whole if rate_hz is None else resample(whole, rate_hz)
    # The replay of the whole file in memory, three loop passes, paced at speed 1 on a clock from 0.
    t_sense, offset_s = [], 0.0
    for _ in range(3):
        t_sense += [int((t - whole.t_s[0] + offset_s) * 1e6 * 1000.0) for t in rec.t_s.tolist()]
        offset_s += float(rec.t_s[-1] - rec.t_s[0]) + 1.0 / rec.rate_hz
    params = {"path": str(tmp_path / "imu.csv"), "speed": 1, "loop": True, "rate_hz": rate_hz}
    async with NodeHarness(_SmallChunks, params, clock=SimClock(0)) as h:
        await h.run_source(max_messages=2 * len(t_sense), timeout_s=60)
    samples = np.stack(h.payloads("sample"))
    assert samples.dtype == np.float32 and samples.shape == (len(t_sense), 6)
    assert np.array_equal(samples, np.tile(rec.samples(), (3, 1)))
    assert rec.labels is not None and h.payloads("label") == rec.labels.tolist() * 3
    assert [m.t_sense_ns for m in h.outputs["sample"]] == t_sense
    assert [m.t_sense_ns for m in h.outputs["label"]] == t_sense


@pytest.mark.parametrize("rate_hz", [None, 30.0])
async def test_imu_replay_sends_every_row_before_a_bad_line(tmp_path: Path, rate_hz: float | None) -> None:
    path = tmp_path / "x.csv"
    good = _jittered_imu_csv(path, n=300)
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(201, "9.5,1,2,abc,4,5,6,walking\n")  # line 202, after 200 rows (16 per chunk)
    path.write_text("".join(lines))
    async with NodeHarness(_SmallChunks, {"path": str(path), "speed": 0, "rate_hz": rate_hz}) as h:
        with pytest.raises(RecordingError, match=r"node 'node': .*x\.csv:202: column 'az': 'abc' is not a"):
            await h.run_source(timeout_s=60)
    before = good.slice(0, 200)
    expected = before if rate_hz is None else resample(before, rate_hz)
    assert np.array_equal(np.stack(h.payloads("sample")), expected.samples())
    assert expected.labels is not None and h.payloads("label") == expected.labels.tolist()


async def test_imu_replay_bad_header_or_empty_file_fails_at_setup(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("t_s,ax,ay,az,gx,gy\n0,1,2,3,4,5\n")
    with pytest.raises(RecordingError, match=r"node 'node': .*x\.csv:1: missing column 'gz'"):
        async with NodeHarness(ImuReplay, {"path": str(path)}):
            pass
    path.write_text("t_s,ax,ay,az,gx,gy,gz\n")
    with pytest.raises(RecordingError, match=r"x\.csv: no samples after the header"):
        async with NodeHarness(ImuReplay, {"path": str(path)}):
            pass


async def test_imu_replay_reads_a_large_csv_lazily(tmp_path: Path) -> None:
    n_rows = 300_000  # 100 minutes at 50 Hz: ~586 chunks of 512 rows
    path = tmp_path / "long.csv"
    path.write_text(
        "t_s,ax,ay,az,gx,gy,gz\n" + "".join(f"{i / 50:.2f},0,0,9.81,0,0,{i % 7}\n" for i in range(n_rows))
    )
    async with NodeHarness(ImuReplay, {"path": str(path), "speed": 0}) as h:
        assert h.node.stream.chunks_read == 1  # setup reads one chunk, to check the header
        read_at_emit: list[int] = []
        emit = h.ctx.emit

        async def counting_emit(port: str, payload: Payload, *, t_sense: int | Message | None = None) -> None:
            read_at_emit.append(h.node.stream.chunks_read)
            await emit(port, payload, t_sense=t_sense)

        h.ctx.emit = counting_emit  # type: ignore[method-assign]
        await h.run_source(max_messages=5000, timeout_s=60)
    chunk = ImuReplay.chunk_rows
    assert len(read_at_emit) == 5000 and read_at_emit[0] == 1
    # Chunks are read as the replay reaches them: message k has needed ceil((k + 1) / chunk) of them.
    assert read_at_emit == [k // chunk + 1 for k in range(5000)]
    assert h.payloads("sample")[4999].tolist() == [0, 0, np.float32(9.81), 0, 0, 4999 % 7]
    assert read_at_emit[-1] * 50 < -(-n_rows // chunk)  # 10 of the file's 586 chunks


async def test_imu_synthetic_source() -> None:
    params = {"activities": [["walking", 1.0], ["sitting", 1.0]], "rate_hz": 50, "speed": 0}
    async with NodeHarness(SyntheticImuSource, params) as h:
        await h.run_source(timeout_s=60)
    assert len(h.payloads("sample")) == 100
    assert h.payloads("label") == [0] * 50 + [3] * 50


async def test_window_node() -> None:
    async with NodeHarness(Window, {"size": 4, "hop": 2}) as h:
        for i in range(9):
            await h.send("x", float(i), t_sense_ns=1000 + i)
    wins = h.payloads("window")
    assert [w.tolist() for w in wins] == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert [m.t_sense_ns for m in h.outputs["window"]] == [1003, 1005, 1007]
    async with NodeHarness(Window, {"size": 3, "batched": True}) as h:
        await h.send("x", np.arange(14).reshape(7, 2))
        await h.send("x", np.arange(14, 20).reshape(3, 2))
    assert [w[:, 0].tolist() for w in h.payloads("window")] == [[0, 2, 4], [6, 8, 10], [12, 14, 16]]
    async with NodeHarness(Window, {"size": 2}) as h:
        with pytest.raises(NodeError, match="input 'x': expected numeric samples"):
            await h.send("x", {"events": 1})


def _batch(n: int = 500, seed: int = 0, t0: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    ev = make_events(
        t0 + np.sort(rng.integers(0, 10_000, n)),
        rng.integers(0, 16, n),
        rng.integers(0, 12, n),
        rng.integers(0, 2, n),
    )
    return {"events": ev, "width": 16, "height": 12, "t0_us": t0, "t1_us": t0 + 10_000}


async def test_representation_nodes() -> None:
    b1, b2 = _batch(seed=1), _batch(seed=2, t0=10_000)
    async with NodeHarness(EventFrame, {"mode": "polarity"}) as h:
        await h.send("events", b1)
    assert np.array_equal(h.payloads("frame")[0], event_frame(b1["events"], 16, 12, "polarity"))  # type: ignore[arg-type]
    async with NodeHarness(VoxelGrid, {"bins": 4}) as h:
        await h.send("events", b1)
    assert np.array_equal(h.payloads("voxels")[0], voxel_grid(b1["events"], 4, 16, 12))  # type: ignore[arg-type]
    async with NodeHarness(TimeSurfaceNode, {"tau_us": 3000}) as h:
        await h.send("events", b1)
        await h.send("events", b2)
    both = np.concatenate([b1["events"], b2["events"]])
    np.testing.assert_allclose(h.payloads("surface")[1], time_surface(both, 16, 12, 3000, 20_000), rtol=1e-5)
    async with NodeHarness(EventTokens, {"n": 600, "mode": "window"}) as h:
        await h.send("events", b1)
        await h.send("events", b2)
    tok = h.payloads("tokens")[1]
    assert tok.shape == (600, 4) and np.array_equal(tok[:, 0], both["x"][-600:])
    async with NodeHarness(EventTokens, {"n": 64}) as h:
        with pytest.raises(NodeError, match="expected an event batch"):
            await h.send("events", np.zeros(3))


async def test_imu_replay_rate_control(tmp_path: Path) -> None:
    rec = SyntheticImu([("walking", 2)], subject_seed=0, rate_hz=100).recording()
    path = tmp_path / "imu.csv"
    write_imu_csv(path, rec)
    async with NodeHarness(ImuReplay, {"path": str(path), "speed": 1}, clock=SimClock(0)) as h:
        task = await _start_source(h, "sample", 10)
        await h.send("rate_hz", 25)
        await h.send("rate_hz", -3)  # ignored
        await task
    d = np.diff([m.t_sense_ns for m in h.outputs["sample"]])
    assert set(d[:9].tolist()) == {10_000_000} and set(d[-10:].tolist()) == {40_000_000}
    assert h.ctx.counters["bad_control"] == 1
