"""AEDAT4 reading, batching, truncation, faery round trips and wrong-type messages."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from faery import aedat as faery_aedat

from nodes.sensors.events import (
    EVENT_DTYPE,
    IMU_DTYPE,
    TRIGGER_DTYPE,
    AedatReader,
    EventBatcher,
    RecordingFormatError,
    make_events,
    write_aedat,
)

SAMPLE_SHA256 = "b42f119af2548d4328e6c0f249e369a4b755d82eeb6ddceb14441492d979444c"


@pytest.fixture
def sample(shared_data: Path) -> Path:
    return shared_data / "dvxplorer_sample.aedat4"


def _synthetic_events(n: int = 20_000, seed: int = 0, w: int = 64, h: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(1_000, 2_000_000, n))
    return make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def test_real_sample_exact_counts(sample: Path) -> None:
    assert hashlib.sha256(sample.read_bytes()).hexdigest() == SAMPLE_SHA256
    reader = AedatReader(sample)
    assert (reader.width, reader.height) == (320, 240)
    seg = reader.read_all()
    ev = seg.events
    assert ev.dtype == EVENT_DTYPE
    assert len(ev) == 111_954
    assert int(ev["p"].sum()) == 55_023
    assert len(seg.imus) == 475
    assert int(ev["t"][-1] - ev["t"][0]) == 589_917
    assert len(seg.triggers) == 0 and reader.has("triggers")
    assert bool(np.all(np.diff(ev["t"]) >= 0))
    # SI units: the sensor lies still, so |a| is about one g.
    norm = np.linalg.norm(np.stack([seg.imus["ax"], seg.imus["ay"], seg.imus["az"]], 1), axis=1)
    assert 9.0 < float(norm.mean()) < 11.0


def test_segments_concatenate_packets(sample: Path) -> None:
    segs = list(AedatReader(sample).segments(min_events=50_000))
    assert [s.packets for s in segs][:1] != [1]  # several packets per segment
    assert sum(len(s.events) for s in segs) == 111_954
    assert all(len(s.events) >= 50_000 for s in segs[:-1])


@pytest.mark.parametrize("kw", [{"window_us": 10_000}, {"window_us": 777}, {"count": 5_000}])
def test_batcher_delivers_every_event_once(sample: Path, kw: dict[str, int]) -> None:
    reader = AedatReader(sample)
    ev = reader.read_all().events
    batches = list(EventBatcher(reader.segments(), **kw))
    got = np.concatenate([b.events for b in batches])
    assert np.array_equal(got, ev)
    assert sum(len(b.imus) for b in batches) == 475
    for a, b in zip(batches, batches[1:], strict=False):
        assert a.t1_us == b.t0_us if "window_us" in kw else a.t1_us >= b.t0_us
    for b in batches:
        if len(b.events):
            assert b.t0_us <= b.events["t"][0] and b.events["t"][-1] < b.t1_us
    if "window_us" in kw:
        assert all(b.t1_us - b.t0_us == kw["window_us"] for b in batches)
    else:
        assert all(len(b.events) == 5_000 for b in batches[:-1])


def test_batcher_start_end_and_period_change() -> None:
    ev = _synthetic_events()
    origin = int(ev["t"][0])
    batches = list(EventBatcher([ev[:7000], ev[7000:]], window_us=1000, start_us=100_000, end_us=300_000))
    got = np.concatenate([b.events for b in batches])
    mask = (ev["t"] >= origin + 100_000) & (ev["t"] < origin + 300_000)
    assert np.array_equal(got, ev[mask])
    assert batches[0].t0_us == origin + 100_000 and batches[-1].t1_us == origin + 300_000
    batcher = EventBatcher([ev], window_us=1000)
    out = []
    for i, b in enumerate(batcher):
        out.append(b)
        if i == 2:
            batcher.set(window_us=50_000)
    assert [b.t1_us - b.t0_us for b in out[:5]] == [1000, 1000, 1000, 50_000, 50_000]
    assert np.array_equal(np.concatenate([b.events for b in out]), ev)


def test_truncated_file_delivers_complete_packets_then_raises(sample: Path, tmp_path: Path) -> None:
    defs = faery_aedat.Decoder(sample).file_data_definitions()
    cut = defs[40].byte_offset + 8 + defs[40].size // 2  # in the middle of packet 40
    expected = sum(d.elements_count for d in defs if d.track_id == 0 and d.byte_offset + 8 + d.size <= cut)
    bad = tmp_path / "cut.aedat4"
    bad.write_bytes(sample.read_bytes()[:cut])
    got = []
    with pytest.raises(RecordingFormatError, match=r"truncated or corrupt after 40 complete packets"):
        for batch in EventBatcher(AedatReader(bad).segments(), window_us=10_000):
            got.append(batch.events)
    assert sum(map(len, got)) == expected > 0
    full = AedatReader(sample).read_all().events
    assert np.array_equal(np.concatenate(got), full[:expected])


def test_faery_round_trip_is_exact(tmp_path: Path) -> None:
    ev = _synthetic_events(30_000)
    imus = np.zeros(50, IMU_DTYPE)
    imus["t"] = np.linspace(2_000, 1_900_000, 50).astype(np.int64)
    imus["az"] = 9.80665
    imus["gx"] = np.linspace(-1, 1, 50)
    trig = np.zeros(3, TRIGGER_DTYPE)
    trig["t"], trig["source"] = [5_000, 6_000, 7_000], [1, 2, 3]
    path = tmp_path / "rt.aedat4"
    write_aedat(path, [ev[:10_000], ev[10_000:]], 64, 48, imus=imus, triggers=trig)
    seg = AedatReader(path).read_all()
    assert AedatReader(path).width == 64 and AedatReader(path).height == 48
    assert np.array_equal(seg.events, ev)
    assert np.array_equal(seg.triggers, trig)
    assert np.array_equal(seg.imus["t"], imus["t"])
    np.testing.assert_allclose(seg.imus["az"], 9.80665, rtol=1e-6)
    np.testing.assert_allclose(seg.imus["gx"], imus["gx"], atol=1e-6)


def test_real_sample_round_trip(sample: Path, tmp_path: Path) -> None:
    seg = AedatReader(sample).read_all()
    out = tmp_path / "copy.aedat4"
    write_aedat(out, seg.events, 320, 240, imus=seg.imus_raw)
    back = AedatReader(out).read_all()
    assert np.array_equal(back.events, seg.events)
    assert np.array_equal(back.imus_raw, seg.imus_raw)


def test_wrong_file_types_say_what_they_are(tmp_path: Path, sample: Path) -> None:
    csv = tmp_path / "events.aedat4"
    csv.write_text("t,x,y,p\n1,2,3,1\n")
    with pytest.raises(RecordingFormatError, match=r"expected an AEDAT4 recording .* text file"):
        AedatReader(csv)
    npy = tmp_path / "arr.aedat4"
    np.save(tmp_path / "arr.npy", np.zeros(3))
    shutil.copy(tmp_path / "arr.npy", npy)
    with pytest.raises(RecordingFormatError, match="NumPy .npy array"):
        AedatReader(npy)
    mcap = tmp_path / "run.aedat4"
    mcap.write_bytes(b"\x89MCAP0\r\n" + b"\0" * 32)
    with pytest.raises(RecordingFormatError, match="MCAP recording"):
        AedatReader(mcap)
    with pytest.raises(RecordingFormatError, match="no such file"):
        AedatReader(tmp_path / "missing.aedat4")
    broken = tmp_path / "header.aedat4"
    broken.write_bytes(sample.read_bytes()[:20])
    with pytest.raises(RecordingFormatError, match="unreadable AEDAT4 header|truncated"):
        list(AedatReader(broken).segments())


def test_imu_rides_along_within_start_and_end(sample: Path) -> None:
    seg = AedatReader(sample).read_all()
    origin = int(seg.events["t"][0])
    batches = list(
        EventBatcher(AedatReader(sample).segments(), window_us=1000, start_us=100_000, end_us=200_000)
    )
    imu = np.concatenate([b.imus for b in batches])
    lo = origin + 100_000
    assert len(imu) and int(imu["t"].min()) >= lo
    assert np.array_equal(imu, seg.imus[(seg.imus["t"] >= lo) & (seg.imus["t"] < origin + 200_000)])
    for b in batches:
        assert not len(b.imus) or int(b.imus["t"].max()) < b.t1_us
