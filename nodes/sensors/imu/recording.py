"""An IMU recording in SI units, resampling to a fixed rate (whole or chunk by chunk), and reading the
IMU stream of an AEDAT4 file."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ACTIVITIES",
    "ImuRecording",
    "ImuStream",
    "resample",
    "resample_count",
    "read_aedat_imu",
    "SAMPLE_COLUMNS",
]

#: The activity labels of the wearable (synthetic data, CSV label names by default); −1 = unlabelled.
ACTIVITIES: tuple[str, ...] = ("walking", "running", "standing", "sitting", "stairs_up", "stairs_down")

#: Column order of `ImuRecording.samples()` and of the `sample` payload IMU nodes emit.
SAMPLE_COLUMNS = ("ax", "ay", "az", "gx", "gy", "gz")


@dataclass
class ImuRecording:
    """IMU samples: t_s float64 (N,) seconds, strictly increasing; accel float64 (N, 3) m/s² (specific
    force: +9.81 along "up" at rest); gyro float64 (N, 3) rad/s, all NaN for an accelerometer-only
    recording (`has_gyro` False); labels int64 (N,) or None, −1 where unlabelled, indexing `label_names`."""

    t_s: np.ndarray
    accel: np.ndarray
    gyro: np.ndarray
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.t_s)
        if self.accel.shape != (n, 3) or self.gyro.shape != (n, 3):
            raise ValueError(
                f"ImuRecording: t_s has {n} samples but accel is {self.accel.shape} and gyro "
                f"{self.gyro.shape}; both must be ({n}, 3)"
            )
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"ImuRecording: labels shape {self.labels.shape}, expected ({n},)")

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def has_gyro(self) -> bool:
        """False for an accelerometer-only recording (gyro all NaN); True when empty."""
        return not (len(self) and bool(np.isnan(self.gyro).all()))

    @property
    def rate_hz(self) -> float:
        """Mean sample rate (0 for fewer than two samples)."""
        return float((len(self) - 1) / (self.t_s[-1] - self.t_s[0])) if len(self) > 1 else 0.0

    def samples(self) -> np.ndarray:
        """float32 (N, 6): ax, ay, az, gx, gy, gz (NaN gyro columns when not `has_gyro`)."""
        return np.concatenate([self.accel, self.gyro], axis=1).astype(np.float32)

    def slice(self, start: int, stop: int) -> ImuRecording:
        lab = None if self.labels is None else self.labels[start:stop]
        return ImuRecording(
            self.t_s[start:stop], self.accel[start:stop], self.gyro[start:stop], lab, self.label_names
        )

    @staticmethod
    def concat(parts: list[ImuRecording]) -> ImuRecording:
        """Join recordings in order (labels kept only if every part has them)."""
        if not parts:
            return ImuRecording(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
        labelled = all(p.labels is not None for p in parts)
        return ImuRecording(
            np.concatenate([p.t_s for p in parts]),
            np.concatenate([p.accel for p in parts]),
            np.concatenate([p.gyro for p in parts]),
            np.concatenate([p.labels for p in parts if p.labels is not None]) if labelled else None,
            parts[-1].label_names,
        )


def resample_count(t_first_s: float, t_last_s: float, rate_hz: float) -> int:
    """How many times t_first_s + k/rate_hz `resample` puts on [t_first_s, t_last_s] (the 1e-9 lets a
    span that is a whole number of periods up to rounding keep its last sample)."""
    return int(np.floor((t_last_s - t_first_s) * rate_hz + 1e-9)) + 1


def resample(rec: ImuRecording, rate_hz: float) -> ImuRecording:
    """Linear interpolation onto t_0 + k/rate_hz over the recording's span; labels take the value of
    the latest original sample at or before each new time."""
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    if len(rec) < 2:
        return rec
    t0 = rec.t_s[0]
    t = t0 + np.arange(resample_count(t0, rec.t_s[-1], rate_hz)) / rate_hz
    return _interp(rec, t)


def _interp(rec: ImuRecording, t: np.ndarray) -> ImuRecording:
    """`rec` at times `t` (linear; labels held from the latest sample at or before each time)."""
    accel = np.stack([np.interp(t, rec.t_s, rec.accel[:, i]) for i in range(3)], axis=1)
    gyro = np.stack([np.interp(t, rec.t_s, rec.gyro[:, i]) for i in range(3)], axis=1)
    labels = None
    if rec.labels is not None:
        labels = rec.labels[np.clip(np.searchsorted(rec.t_s, t, "right") - 1, 0, len(rec) - 1)]
    return ImuRecording(t, accel, gyro, labels, rec.label_names)


class ImuStream:
    """A recording read chunk by chunk, taken in blocks at a rate that may change along the way.

    `take(after_s, rate_hz)` returns the next samples later than `after_s`: the recorded ones
    (`rate_hz` None) or those of `resample(whole, rate_hz)`, bit for bit, though only the current
    chunk is in memory: it keeps the recorded samples since `after_s` (about recorded rate / rate_hz
    of them, needed if the rate changes) plus the chunk being taken from, however long the file.

    Example::

        chunks = iter_imu_csv("walk.csv", 512)
        stream = ImuStream(next(chunks), chunks)
        t_done = -np.inf
        while (block := stream.take(t_done, 25.0)) is not None:
            use(block)
            t_done = float(block.t_s[-1])
    """

    def __init__(self, first: ImuRecording, rest: Generator[ImuRecording, None, None]) -> None:
        """`first` is the first chunk, read by the caller so that it can report a bad header or an
        empty recording in its own words; `rest` yields the others."""
        if not len(first):
            raise ValueError("ImuStream: the first chunk is empty; the recording needs at least one sample")
        self._chunks = rest
        self._window = first  # from the latest sample at or before the last `after_s` to the chunk's end
        self._done = False  # the reader is exhausted (or failed): `_window` holds the recording's end
        self._error: Exception | None = None
        self.chunks_read = 1
        self.count = len(first)  # samples read so far
        self.t_first_s = float(first.t_s[0])
        self.t_last_s = float(first.t_s[-1])
        self.first_rate_hz = first.rate_hz  # the recorded rate, as far as the first chunk tells
        self.has_gyro = first.has_gyro

    def take(self, after_s: float, rate_hz: float | None) -> ImuRecording | None:
        """The next samples later than `after_s` at `rate_hz` (None: as recorded), at most about one
        chunk; None once the recording is done. If the reader failed, its error is raised here only
        after every sample before the bad line has been taken."""
        if rate_hz is not None and not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        while True:
            block = self._block(after_s, rate_hz)
            if len(block):
                return block
            if self._done:
                if self._error is not None:
                    raise self._error
                return None
            self._advance(after_s)

    def whole(self) -> ImuRecording | None:
        """The entire recording if it came in one chunk and has been read to its end (so that a loop
        need not read it again), else None."""
        done = self._done and self._error is None and self.chunks_read == 1
        return self._window if done else None

    def close(self) -> None:
        """Close the reader (its file) early; a stream read to the end has closed it already."""
        self._chunks.close()

    def _block(self, after_s: float, rate_hz: float | None) -> ImuRecording:
        w = self._window
        if rate_hz is None:
            return w.slice(int(np.searchsorted(w.t_s, after_s, "right")), len(w))
        t0, t_end = self.t_first_s, float(w.t_s[-1])
        start = _first_after(t0, rate_hz, after_s)
        stop = resample_count(t0, t_end, rate_hz)
        if not self._done:  # a time past this chunk's end interpolates towards the next chunk
            stop = min(stop, _first_after(t0, rate_hz, t_end))
        return _interp(w, t0 + np.arange(start, max(start, stop)) / rate_hz)

    def _advance(self, after_s: float) -> None:
        w = self._window
        keep = max(0, int(np.searchsorted(w.t_s, after_s, "right")) - 1)
        try:
            chunk = next(self._chunks, None)
        except Exception as exc:  # the reader's error, raised once the samples before it are taken
            chunk, self._error = None, exc
        if chunk is None:
            self._done = True
            return
        self.chunks_read += 1
        if len(chunk):
            self._window = ImuRecording.concat([w.slice(keep, len(w)), chunk])
            self.count += len(chunk)
            self.t_last_s = float(chunk.t_s[-1])


def _first_after(t0: float, rate_hz: float, t_s: float) -> int:
    """The first k with t0 + k/rate_hz > t_s, computed as `resample` computes its times."""
    if not t_s >= t0:
        return 0
    k = int(np.floor((t_s - t0) * rate_hz))
    while t0 + k / rate_hz <= t_s:
        k += 1
    while k > 0 and t0 + (k - 1) / rate_hz > t_s:
        k -= 1
    return k


def read_aedat_imu(path: str | Path) -> ImuRecording:
    """The IMU stream of an AEDAT4 file, in SI units, t_s from the first IMU sample."""
    from nodes.sensors.events.aedat_io import AedatReader
    from nodes.sensors.events.dtypes import concat_records
    from nodes.sensors.events.errors import RecordingFormatError

    reader = AedatReader(path)
    if not reader.has("imus"):
        kinds = ", ".join(sorted({s.kind for s in reader.streams.values()})) or "none"
        raise RecordingFormatError(f"{path}: this AEDAT4 file has no IMU stream (streams: {kinds})")
    imus = concat_records([seg.imus for seg in reader.segments()])
    t = imus["t"].astype(np.int64)
    acc = np.stack([imus["ax"], imus["ay"], imus["az"]], axis=1).astype(np.float64)
    gyr = np.stack([imus["gx"], imus["gy"], imus["gz"]], axis=1).astype(np.float64)
    return ImuRecording((t - t[0]) * 1e-6 if len(t) else np.zeros(0), acc, gyr)
