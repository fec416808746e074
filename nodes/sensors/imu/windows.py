"""Sliding windows over sample arrays, and labelled IMU windows for training classifiers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .recording import ImuRecording

__all__ = ["sliding_windows", "make_windows", "labelled_windows"]

_NO_GYRO = (
    "accelerometer-only (no gyroscope columns gx, gy, gz in rad/s); windows are 6-channel "
    "(ax, ay, az m/s²; gx, gy, gz rad/s) and training on accelerometer-only data is not supported: "
    "use recordings with a gyroscope, or leave this one out"
)


def sliding_windows(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Windows of `size` samples every `hop` along axis 0: a read-only view (n, size, ...), no copy."""
    if size <= 0 or hop <= 0:
        raise ValueError(f"size and hop must be > 0, got size={size}, hop={hop}")
    if len(x) < size:
        return np.zeros((0, size) + x.shape[1:], x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, size, axis=0)[::hop]
    return np.moveaxis(view, -1, 1)


def make_windows(
    data: ImuRecording | tuple[np.ndarray, np.ndarray],
    size: int = 128,
    hop: int = 64,
    label: Literal["last", "majority", "pure"] = "majority",
) -> tuple[np.ndarray, np.ndarray]:
    """(X float32 (n, size, 6), y int64 (n,)) from a labelled recording or a (samples, labels) pair.

    `label`: the window's last label, its most common one, or `pure` (windows that straddle two
    labels or contain unlabelled samples are dropped). UCI-HAR uses 2.56 s windows with 50 % overlap
    (128 samples, hop 64, at 50 Hz; Anguita et al. 2013).
    """
    if isinstance(data, ImuRecording):
        if data.labels is None:
            raise ValueError("make_windows: the recording has no labels")
        if not data.has_gyro:
            raise ValueError(f"make_windows: {_NO_GYRO}")
        x, y = data.samples(), data.labels
    else:
        x, y = np.asarray(data[0], np.float32), np.asarray(data[1], np.int64)
    xw = sliding_windows(x, size, hop)
    yw = sliding_windows(y, size, hop)
    if label == "last":
        labels = yw[:, -1]
    elif label == "majority":
        labels = np.array([np.bincount(r[r >= 0]).argmax() if (r >= 0).any() else -1 for r in yw], np.int64)
    elif label == "pure":
        keep = (yw == yw[:, :1]).all(axis=1) & (yw[:, 0] >= 0)
        xw, labels = xw[keep], yw[keep, 0]
    else:
        raise ValueError(f"make_windows: label {label!r} is not one of 'last', 'majority', 'pure'")
    return np.ascontiguousarray(xw, np.float32), np.asarray(labels, np.int64)


def labelled_windows(
    recordings: Sequence[ImuRecording], size: int, hop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pure windows (`make_windows(..., "pure")`) of every labelled recording, concatenated.

    (X float32 (n, size, 6), y int64 (n,)); empty arrays of the right shape when nothing qualifies,
    so training and calibration code need no special case for an empty data set.
    """
    for i, r in enumerate(recordings):
        if not r.has_gyro:
            raise ValueError(f"labelled_windows: recording {i + 1} of {len(recordings)}: {_NO_GYRO}")
    parts = [make_windows(r, size, hop, "pure") for r in recordings if r.labels is not None]
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros((0, size, 6), np.float32), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
