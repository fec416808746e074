"""An IMU recording in SI units, resampling to a fixed rate, and reading the IMU stream of an AEDAT4 file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ImuRecording", "resample", "read_aedat_imu", "SAMPLE_COLUMNS"]

#: Column order of `ImuRecording.samples()` and of the `sample` payload IMU nodes emit.
SAMPLE_COLUMNS = ("ax", "ay", "az", "gx", "gy", "gz")


@dataclass
class ImuRecording:
    """IMU samples: t_s float64 (N,) seconds, strictly increasing; accel float64 (N, 3) m/s² (specific
    force: +9.81 along "up" at rest); gyro float64 (N, 3) rad/s; labels int64 (N,) or None, −1 where
    unlabelled, indexing `label_names`."""

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
    def rate_hz(self) -> float:
        """Mean sample rate (0 for fewer than two samples)."""
        return float((len(self) - 1) / (self.t_s[-1] - self.t_s[0])) if len(self) > 1 else 0.0

    def samples(self) -> np.ndarray:
        """float32 (N, 6): ax, ay, az, gx, gy, gz."""
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


def resample(rec: ImuRecording, rate_hz: float) -> ImuRecording:
    """Linear interpolation onto t_0 + k/rate_hz over the recording's span; labels take the value of
    the latest original sample at or before each new time."""
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    if len(rec) < 2:
        return rec
    t0 = rec.t_s[0]
    n = int(np.floor((rec.t_s[-1] - t0) * rate_hz + 1e-9)) + 1
    t = t0 + np.arange(n) / rate_hz
    accel = np.stack([np.interp(t, rec.t_s, rec.accel[:, i]) for i in range(3)], axis=1)
    gyro = np.stack([np.interp(t, rec.t_s, rec.gyro[:, i]) for i in range(3)], axis=1)
    labels = None
    if rec.labels is not None:
        labels = rec.labels[np.clip(np.searchsorted(rec.t_s, t, "right") - 1, 0, len(rec) - 1)]
    return ImuRecording(t, accel, gyro, labels, rec.label_names)


def read_aedat_imu(path: str | Path) -> ImuRecording:
    """The IMU stream of an AEDAT4 file, in SI units, t_s from the first IMU sample."""
    from nodes.events.aedat_io import AedatReader
    from nodes.events.dtypes import concat_records
    from nodes.events.errors import RecordingFormatError

    reader = AedatReader(path)
    if not reader.has("imus"):
        kinds = ", ".join(sorted({s.kind for s in reader.streams.values()})) or "none"
        raise RecordingFormatError(f"{path}: this AEDAT4 file has no IMU stream (streams: {kinds})")
    imus = concat_records([seg.imus for seg in reader.segments()])
    t = imus["t"].astype(np.int64)
    acc = np.stack([imus["ax"], imus["ay"], imus["az"]], axis=1).astype(np.float64)
    gyr = np.stack([imus["gx"], imus["gy"], imus["gz"]], axis=1).astype(np.float64)
    return ImuRecording((t - t[0]) * 1e-6 if len(t) else np.zeros(0), acc, gyr)
