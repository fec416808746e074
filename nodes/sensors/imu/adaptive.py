"""Action-to-sensing for a wearable: sample fast while the wearer moves, slowly while they keep still.

`RateController` watches the spread of the acceleration magnitude over the last second (gait puts
several m/s² into it, standing or sitting a few hundredths) and asks the IMU for `high_hz` or `low_hz`,
with hysteresis so it does not flap. `adaptive_rate_experiment` runs it against the synthetic wearable
and reports samples sensed and activity-recognition accuracy kept, against sensing at the full rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .recording import ACTIVITIES
from .synthetic import SyntheticImu

__all__ = ["RateConfig", "RateController", "adaptive_rate_experiment", "window_features"]


@dataclass(frozen=True)
class RateConfig:
    """`still_below` / `moving_above`: std of |a| (m/s²) over `window_s` that switches to the low / the
    high rate (hysteresis between them). Gait gives ≳ 1 m/s², quiet standing ≈ 0.05–0.1 (our wearable's
    postural sway and sensor noise)."""

    high_hz: float = 50.0
    low_hz: float = 10.0
    window_s: float = 1.0
    still_below: float = 0.3
    moving_above: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.low_hz <= self.high_hz:
            raise ValueError(f"need 0 < low_hz ≤ high_hz, got {self.low_hz}, {self.high_hz}")
        if not 0 < self.still_below <= self.moving_above:
            raise ValueError(
                f"need 0 < still_below ≤ moving_above, got {self.still_below}, {self.moving_above}"
            )


class RateController:
    """Feed it samples (time in s, float (6,) accel+gyro); it returns a new rate when one is due."""

    def __init__(self, cfg: RateConfig | None = None) -> None:
        self.cfg = cfg or RateConfig()
        self.rate_hz = self.cfg.high_hz
        self._mag: deque[tuple[float, float]] = deque()
        self.switches = 0

    def observe(self, t_s: float, sample: np.ndarray) -> float | None:
        c = self.cfg
        self._mag.append((t_s, float(np.linalg.norm(sample[:3]))))
        while self._mag and self._mag[0][0] < t_s - c.window_s:
            self._mag.popleft()
        if len(self._mag) < 4 or self._mag[-1][0] - self._mag[0][0] < 0.5 * c.window_s:
            return None  # too little history for a decision
        spread = float(np.std([m for _, m in self._mag]))
        want = c.low_hz if spread < c.still_below else c.high_hz if spread > c.moving_above else self.rate_hz
        if want == self.rate_hz:
            return None
        self.rate_hz = want
        self.switches += 1
        return want


def window_features(t_s: np.ndarray, x: np.ndarray, grid_hz: float = 10.0) -> np.ndarray:
    """Features of one window that do not depend on the rate it was sensed at: mean acceleration
    (posture, 3), std of |a|, mean |ω|, and crossings per second of |a| about its mean, counted on
    |a| interpolated onto a `grid_hz` grid (noise at 50 Hz would cross far more often than at 10)."""
    mag = np.linalg.norm(x[:, :3], axis=1)
    span = max(float(t_s[-1] - t_s[0]), 1e-6)
    grid = np.interp(np.arange(t_s[0], t_s[-1] + 1e-9, 1.0 / grid_hz), t_s, mag)
    crossings = np.count_nonzero(np.diff(np.signbit(grid - grid.mean()))) / span
    return np.concatenate([x[:, :3].mean(0), [mag.std(), np.linalg.norm(x[:, 3:], axis=1).mean(), crossings]])


def _classify(feats: np.ndarray, centroids: np.ndarray, scale: np.ndarray) -> np.ndarray:
    d = (((feats[:, None, :] - centroids[None]) / scale) ** 2).sum(-1)
    return np.asarray(np.argmin(d, axis=1))


def adaptive_rate_experiment(
    *, seconds: float = 600.0, seed: int = 0, window_s: float = 2.0, cfg: RateConfig | None = None
) -> dict[str, float]:
    """One synthetic wearer (random bouts of all six activities): samples sensed and accuracy, adaptive
    rate against the full rate. A nearest-centroid classifier on `window_features`, calibrated on the
    wearer's first 40 % at the full rate, labels every `window_s` window of the remaining 60 %."""
    cfg = cfg or RateConfig()
    imu = SyntheticImu(None, subject_seed=seed, rate_hz=cfg.high_hz, seed=seed)
    x, y = imu.read(int(seconds * cfg.high_hz))
    t = np.arange(len(x)) / cfg.high_hz
    ctl = RateController(cfg)
    keep = np.zeros(len(x), bool)
    t_next = 0.0
    for i in range(len(x)):  # the sensor loop, sample by sample (the controller is causal)
        if t[i] + 1e-9 < t_next:
            continue
        keep[i] = True
        t_next = t[i] + 1.0 / ctl.rate_hz
        ctl.observe(float(t[i]), x[i])
    win = np.floor(t / window_s).astype(int)
    n_win = int(win[-1]) + 1
    split = int(0.4 * n_win)

    def features(mask: np.ndarray, windows: range) -> tuple[np.ndarray, np.ndarray]:
        f, lab = [], []
        for w in windows:
            sel = (win == w) & mask
            full = win == w
            labels = y[full]
            if sel.sum() < 3 or (labels != labels[0]).any():
                continue  # windows across a bout boundary have no single label
            f.append(window_features(t[sel], x[sel]))
            lab.append(int(labels[0]))
        return np.array(f), np.array(lab)

    f_cal, l_cal = features(np.ones(len(x), bool), range(split))
    present = np.unique(l_cal)
    centroids = np.array([f_cal[l_cal == k].mean(0) for k in present])
    scale = f_cal.std(0) + 1e-6
    out: dict[str, float] = {}
    for name, mask in (("full", np.ones(len(x), bool)), ("adaptive", keep)):
        f, lab = features(mask, range(split, n_win))
        ok = np.isin(lab, present)
        pred = present[_classify(f[ok], centroids, scale)]
        out[f"accuracy_{name}_pct"] = 100.0 * float(np.mean(pred == lab[ok]))
        out[f"samples_{name}"] = float(mask[win >= split].sum())
    out["reduction_x"] = out["samples_full"] / max(1.0, out["samples_adaptive"])
    out["accuracy_lost_points"] = out["accuracy_full_pct"] - out["accuracy_adaptive_pct"]
    out["switches"] = float(ctl.switches)
    out["still_share"] = float(np.isin(y, [ACTIVITIES.index("standing"), ACTIVITIES.index("sitting")]).mean())
    return out
