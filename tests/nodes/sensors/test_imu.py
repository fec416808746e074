"""IMU CSV I/O and its error messages, resampling, AEDAT4 IMU, the synthetic wearable and windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nodes.sensors.events import RecordingFormatError
from nodes.sensors.imu import (
    ACTIVITIES,
    ImuRecording,
    ImuStream,
    SyntheticImu,
    iter_imu_csv,
    labelled_windows,
    make_windows,
    read_aedat_imu,
    read_imu_csv,
    resample,
    sliding_windows,
    write_imu_csv,
    write_synthetic_dataset,
)

HEADER = "t_s,ax,ay,az,gx,gy,gz,label\n"


def test_csv_round_trip(tmp_path: Path) -> None:
    rec = SyntheticImu([("walking", 2), ("sitting", 2)], subject_seed=1).recording()
    path = tmp_path / "walk.csv"
    write_imu_csv(path, rec)
    assert path.read_text().splitlines()[0] == "t_s,ax,ay,az,gx,gy,gz,label"
    back = read_imu_csv(path)
    np.testing.assert_allclose(back.t_s, rec.t_s, atol=1e-6)
    np.testing.assert_allclose(back.accel, rec.accel, atol=1e-6)
    np.testing.assert_allclose(back.gyro, rec.gyro, atol=1e-6)
    assert back.labels is not None and rec.labels is not None and np.array_equal(back.labels, rec.labels)
    assert back.label_names[: len(ACTIVITIES)] == ACTIVITIES
    unlabelled = ImuRecording(rec.t_s, rec.accel, rec.gyro)
    write_imu_csv(tmp_path / "u.csv", unlabelled)
    assert read_imu_csv(tmp_path / "u.csv").labels is None


def test_csv_columns_found_by_name_and_labels_mapped(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "# a comment\ngz,gy,gx,az,ay,ax,t_s,label,extra\n"
        "6,5,4,3,2,1,0.0,running,z\n\n6,5,4,3,2,1,0.02,,z\n6,5,4,3,2,1,0.04,jumping,z\n"
    )
    rec = read_imu_csv(path)
    assert rec.accel[0].tolist() == [1, 2, 3] and rec.gyro[0].tolist() == [4, 5, 6]
    assert rec.labels is not None and rec.labels.tolist() == [1, -1, len(ACTIVITIES)]
    assert rec.label_names[-1] == "jumping"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("t_s,ax,ay,az,gx,gy\n0,1,2,3,4,5\n", r"x\.csv:1: missing column 'gz'"),
        ("t_s,ax,ay,gx,gy,gz\n0,1,2,3,4,5\n", r"x\.csv:1: missing column 'az'"),
        (
            HEADER + "0,1,2,3,4,5,6,walking\n0.02,1,2,abc,4,5,6,walking\n",
            r"x\.csv:3: column 'az': 'abc' is not a",
        ),
        (HEADER + "0,1,2,3,4,5,6,walking\n0.02,1,2,3,4,5\n", r"x\.csv:3: column 'gz' is missing"),
        (HEADER + "0,1,2,3,4,5,nan,walking\n", r"x\.csv:2: column 'gz': 'nan' is not a finite number"),
        (HEADER + "0.5,1,2,3,4,5,6,\n0.5,1,2,3,4,5,6,\n", r"x\.csv:3: column 't_s': 0\.5 does not increase"),
        ("", r"empty file"),
    ],
)
def test_csv_errors_name_column_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(body)
    with pytest.raises(RecordingFormatError, match=message):
        read_imu_csv(path)


def test_csv_error_on_a_later_chunk_names_the_right_line(tmp_path: Path) -> None:
    lines = [HEADER] + [f"{i * 0.01:.2f},1,2,3,4,5,6,walking\n" for i in range(20_000)]
    lines[15_000] = "150.00,1,2,3,x4,5,6,walking\n"
    path = tmp_path / "x.csv"
    path.write_text("".join(lines))
    with pytest.raises(RecordingFormatError, match=r"x\.csv:15001: column 'gx': 'x4'"):
        read_imu_csv(path)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("9.99,1,2,abc,4,5,6,walking\n", r"x\.csv:102: column 'az': 'abc' is not a"),
        ("9.99,1,2,3,4,5\n", r"x\.csv:102: column 'gz' is missing"),
        ("0.5,1,2,3,4,5,6,walking\n", r"x\.csv:102: column 't_s': 0\.5 does not increase"),
    ],
)
def test_csv_stream_yields_every_good_row_before_the_error(tmp_path: Path, bad: str, message: str) -> None:
    rows = [f"{i * 0.01:.2f},1,2,3,4,5,6,walking\n" for i in range(150)]
    rows[100] = bad  # line 102: the header is line 1
    path = tmp_path / "x.csv"
    path.write_text(HEADER + "".join(rows))
    chunks = iter_imu_csv(path, chunk_rows=64)
    got: list[ImuRecording] = []
    with pytest.raises(RecordingFormatError, match=message):
        for chunk in chunks:
            got.append(chunk)
    assert [len(c) for c in got] == [64, 36]  # the bad line's chunk is cut just before it
    np.testing.assert_allclose(ImuRecording.concat(got).t_s, np.arange(100) * 0.01)


def _irregular_csv(tmp_path: Path, n: int = 2000) -> Path:
    """A labelled recording with jittered sample times (10–30 ms apart), so no grid lines up."""
    rng = np.random.default_rng(5)
    rec = SyntheticImu([("walking", 25), ("standing", 15)], subject_seed=2, rate_hz=50).recording()
    t = np.round(np.cumsum(rng.uniform(0.01, 0.03, n)), 6)
    rec = ImuRecording(t, rec.accel[:n], rec.gyro[:n], rec.labels[:n] if rec.labels is not None else None)
    path = tmp_path / "jitter.csv"
    write_imu_csv(path, rec)
    return path


def _stream(path: Path, chunk_rows: int) -> ImuStream:
    chunks = iter_imu_csv(path, chunk_rows)
    return ImuStream(next(chunks), chunks)


def _assert_same(a: ImuRecording, b: ImuRecording) -> None:
    assert np.array_equal(a.t_s, b.t_s) and np.array_equal(a.accel, b.accel)
    assert np.array_equal(a.gyro, b.gyro)
    assert a.labels is not None and b.labels is not None and np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64])
@pytest.mark.parametrize("rate_hz", [None, 50.0, 33.3, 120.0, 0.7])
def test_stream_equals_resampling_the_whole_file(
    tmp_path: Path, chunk_rows: int, rate_hz: float | None
) -> None:
    path = _irregular_csv(tmp_path)
    whole = read_imu_csv(path)
    stream, blocks, t_done = _stream(path, chunk_rows), [], -np.inf
    while (block := stream.take(t_done, rate_hz)) is not None:
        blocks.append(block)
        t_done = float(block.t_s[-1])
    assert stream.chunks_read == -(-len(whole) // chunk_rows) and len(blocks) > 1
    _assert_same(ImuRecording.concat(blocks), whole if rate_hz is None else resample(whole, rate_hz))


def test_stream_chunk_ending_a_hair_before_a_resampled_time() -> None:
    # resample keeps a time up to 1e-9 periods past the end; mid-file such a time must wait for the
    # next chunk and interpolate towards it, not be held at this chunk's last value.
    t = np.array([0.0, 0.05, 0.1 - 1e-11, 0.2, 0.3])
    accel = np.stack([np.arange(5.0), np.zeros(5), np.zeros(5)], axis=1)
    whole = ImuRecording(t, accel, np.zeros((5, 3)), np.zeros(5, np.int64))
    stream = ImuStream(whole.slice(0, 3), (whole.slice(i, i + 1) for i in (3, 4)))
    blocks, t_done = [], -np.inf
    while (block := stream.take(t_done, 10.0)) is not None:
        blocks.append(block)
        t_done = float(block.t_s[-1])
    _assert_same(ImuRecording.concat(blocks), resample(whole, 10.0))


@pytest.mark.parametrize("chunk_rows", [1, 7, 64])
def test_stream_rate_changes_equal_switching_between_whole_resamplings(
    tmp_path: Path, chunk_rows: int
) -> None:
    path = _irregular_csv(tmp_path)
    whole = read_imu_csv(path)
    switches: dict[int, float | None] = {10: 25.0, 300: None, 700: 120.0, 1500: 3.0, 1510: None, 1600: 50.0}

    # What the node did with the whole file in memory: before the j-th sample, switch and go on
    # with the first sample of the new resampling after the last one emitted.
    todo, rec, i, t_done, ref = dict(switches), whole, 0, -np.inf, []
    while True:
        if len(ref) in todo:
            rate = todo.pop(len(ref))
            rec = whole if rate is None else resample(whole, rate)
            i = int(np.searchsorted(rec.t_s, t_done, "right"))
        if i >= len(rec):
            break
        ref.append(rec.slice(i, i + 1))
        t_done, i = float(rec.t_s[i]), i + 1

    todo, stream, got, t_done, rate_now = dict(switches), _stream(path, chunk_rows), [], -np.inf, None
    while (block := stream.take(t_done, rate_now)) is not None:
        for k in range(len(block)):
            if len(got) in todo:
                rate_now = todo.pop(len(got))
                break
            got.append(block.slice(k, k + 1))
            t_done = float(block.t_s[k])
    assert not todo and len(got) == len(ref)
    _assert_same(ImuRecording.concat(got), ImuRecording.concat(ref))


def test_wrong_file_type(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(
        RecordingFormatError, match=r"expected an IMU CSV .* AEDAT 4\.0 event-camera recording"
    ):
        read_imu_csv(shared_data / "dvxplorer_sample.aedat4")
    png = tmp_path / "a.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(RecordingFormatError, match="PNG image"):
        read_imu_csv(png)


def test_resample() -> None:
    t = np.array([0.0, 0.1, 0.3, 0.4])
    acc = np.stack([t * 10, t * 0, t * 0 + 9.8], 1)
    rec = ImuRecording(t, acc, np.zeros((4, 3)), np.array([0, 1, 2, 3]), ACTIVITIES)
    r = resample(rec, 20)
    assert np.allclose(r.t_s, np.arange(9) * 0.05)
    np.testing.assert_allclose(r.accel[:, 0], r.t_s * 10)
    assert r.labels is not None and r.labels.tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="rate_hz"):
        resample(rec, 0)


def test_aedat_imu_stream(shared_data: Path) -> None:
    rec = read_aedat_imu(shared_data / "dvxplorer_sample.aedat4")
    assert len(rec) == 475 and rec.t_s[0] == 0.0 and bool(np.all(np.diff(rec.t_s) > 0))
    assert 9.0 < float(np.linalg.norm(rec.accel, axis=1).mean()) < 11.0  # m/s², at rest
    assert float(np.abs(rec.gyro).max()) < 1.0  # rad/s


def test_synthetic_imu_determinism_and_streaming() -> None:
    sched = [("walking", 4), ("running", 4), ("standing", 4)]
    a = SyntheticImu(sched, subject_seed=3).read(10_000)
    b = SyntheticImu(sched, subject_seed=3).read(10_000)
    assert a[0].shape == (600, 6) and a[0].dtype == np.float32
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], SyntheticImu(sched, subject_seed=4).read(10_000)[0])
    gen = SyntheticImu(sched, subject_seed=3)
    parts = [gen.read(7) for _ in range(100)]
    assert sum(len(p[1]) for p in parts) == 600 and gen.remaining == 0
    assert np.bincount(a[1]).tolist() == [200, 200, 200]
    # Gravity is there when still; running shakes harder than walking.
    x, y = a
    assert 9.0 < float(np.linalg.norm(x[y == 2, :3], axis=1).mean()) < 10.6
    assert x[y == 1, :3].std(0).sum() > 2 * x[y == 0, :3].std(0).sum()
    endless = SyntheticImu(None, subject_seed=1)
    assert len(endless.read(5000)[0]) == 5000 and endless.duration_s is None
    with pytest.raises(ValueError, match="unknown activity"):
        SyntheticImu([("flying", 3)])


def _features(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x.mean(1), x.std(1)], axis=1)


def _windows(subjects: range, shift: float) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s in subjects:
        imu = SyntheticImu([(a, 15.0) for a in ACTIVITIES], subject_seed=s, subject_shift=shift)
        x, y = make_windows(imu.recording(), 128, 64, label="pure")
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def test_activities_are_separable_across_subjects_and_shift_hurts() -> None:
    def accuracy(shift: float) -> float:
        xtr, ytr = _windows(range(6), shift)
        xte, yte = _windows(range(50, 53), shift)
        ftr, fte = _features(xtr), _features(xte)
        scale = ftr.std(0) + 1e-9
        centroids = np.stack([ftr[ytr == c].mean(0) for c in range(len(ACTIVITIES))])
        pred = np.argmin((((fte[:, None] - centroids) / scale) ** 2).sum(-1), axis=1)
        return float((pred == yte).mean())

    same, shifted = accuracy(0.0), accuracy(2.5)
    assert same > 0.8  # nearest centroid on mean/std features, unseen subjects (chance: 1/6)
    assert shifted < same - 0.1  # subject shift is a real knob (another helper adapts to it on-device)


def test_windows() -> None:
    x = np.arange(20).reshape(10, 2)
    w = sliding_windows(x, 4, 3)
    assert w.shape == (3, 4, 2) and w[1, 0, 0] == 6 and w[2, -1, 1] == 19
    assert sliding_windows(x, 11, 1).shape == (0, 11, 2)
    y = np.array([0] * 5 + [1] * 5)
    xw, yw = make_windows((x.astype(np.float32), y), 4, 2, label="majority")
    assert yw.tolist() == [0, 0, 1, 1] and xw.shape == (4, 4, 2)
    assert make_windows((x, y), 4, 2, label="pure")[1].tolist() == [0, 1]
    assert make_windows((x, y), 4, 2, label="last")[1].tolist() == [0, 1, 1, 1]


def test_write_synthetic_dataset(tmp_path: Path) -> None:
    paths = write_synthetic_dataset(
        tmp_path / "har", n_subjects=2, minutes_per_subject=0.5, rate_hz=25, seed=1
    )
    assert [p.name for p in paths] == ["subject_00.csv", "subject_01.csv"]
    recs = [read_imu_csv(p) for p in paths]
    assert all(len(r) == 750 and abs(r.rate_hz - 25) < 1e-6 for r in recs)
    assert not np.array_equal(recs[0].accel, recs[1].accel)
    again = write_synthetic_dataset(
        tmp_path / "again", n_subjects=1, minutes_per_subject=0.5, rate_hz=25, seed=1
    )
    assert again[0].read_text() == paths[0].read_text()


def test_accelerometer_only_csv_reads_with_nan_gyro_and_writes_back(tmp_path: Path) -> None:
    path = tmp_path / "acc.csv"
    path.write_text("t_s,ax,ay,az,label\n0,1,2,9.8,walking\n0.02,1,2,9.7,walking\n0.04,1,2,9.6,\n")
    with pytest.raises(
        RecordingFormatError,
        match=r"acc\.csv:1: missing columns 'gx' \(rad/s\), 'gy' \(rad/s\), 'gz' \(rad/s\) .*"
        r"accelerometer-only recording: imu\.replay and read_imu_csv\(\.\.\., accel_only=True\) take it",
    ):
        read_imu_csv(path)  # what training reads: refused, naming the file
    rec = read_imu_csv(path, accel_only=True)
    assert not rec.has_gyro and rec.gyro.shape == (3, 3) and np.isnan(rec.gyro).all()
    assert rec.accel[:, 2].tolist() == [9.8, 9.7, 9.6] and rec.labels is not None
    assert rec.labels.tolist() == [0, 0, -1]
    assert not resample(rec, 100.0).has_gyro
    write_imu_csv(tmp_path / "back.csv", rec)
    assert (tmp_path / "back.csv").read_text().splitlines()[0] == "t_s,ax,ay,az,label"
    back = read_imu_csv(tmp_path / "back.csv", accel_only=True)
    assert np.allclose(back.accel, rec.accel) and not back.has_gyro and back.samples().shape == (3, 6)
    assert SyntheticImu([("walking", 1)], subject_seed=0).recording().has_gyro


def test_csv_errors_state_units(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("t_s,ax,ay,az,gx\n0,1,2,3,4\n")  # a partial gyroscope is an error, not accel-only
    with pytest.raises(
        RecordingFormatError,
        match=r"x\.csv:1: missing columns 'gy' \(rad/s\), 'gz' \(rad/s\) .*t_s in s, ax/ay/az in m/s²",
    ):
        read_imu_csv(path, accel_only=True)
    path.write_text("t_s,ay,az\n0,1,2\n")
    with pytest.raises(RecordingFormatError, match=r"missing column 'ax' \(m/s²\)"):
        read_imu_csv(path, accel_only=True)
    path.write_text("t_s,ax,ay,az\n0,1,2,abc\n")
    with pytest.raises(
        RecordingFormatError, match=r"x\.csv:2: column 'az': 'abc' is not a finite number in m/s²"
    ):
        read_imu_csv(path, accel_only=True)


def test_windows_refuse_accelerometer_only_recordings(tmp_path: Path) -> None:
    rec = SyntheticImu([("walking", 4)], subject_seed=0).recording()
    acc = ImuRecording(rec.t_s, rec.accel, np.full_like(rec.gyro, np.nan), rec.labels, rec.label_names)
    with pytest.raises(
        ValueError, match=r"make_windows: accelerometer-only .*gx, gy, gz in rad/s.*not supported"
    ):
        make_windows(acc, 64, 32)
    with pytest.raises(ValueError, match=r"labelled_windows: recording 2 of 2: accelerometer-only"):
        labelled_windows([rec, acc], 64, 32)
