"""A wearable (waist-worn) IMU that performs human activities: gait harmonics, posture, subjects, noise, drift.

The layout follows UCI-HAR (a waist-worn phone at 50 Hz; walking, stairs up/down, sitting, standing,
lying; Anguita et al., ESANN 2013). The signal model is ours: periodic gait accelerations and angular
rates at the step frequency and its harmonics (lateral sway and yaw at the stride frequency, half of
it), gravity rotated by the activity's posture, all rotated by the subject's sensor mounting, plus
white noise and random-walk bias drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .csv_io import write_imu_csv
from .recording import ACTIVITIES, ImuRecording

__all__ = ["ActivityModel", "SyntheticImu", "write_synthetic_dataset", "GRAVITY"]

GRAVITY = 9.80665  # m/s², standard gravity (CGPM 1901)


@dataclass(frozen=True)
class ActivityModel:
    """Per-activity signal parameters for an average subject.

    step_hz: step frequency (walking ~100–120 steps/min, Tudor-Locke et al. 2011; running
    ~150–180, Heiderscheit et al. 2011). vert/fwd: vertical and forward acceleration amplitudes
    (m/s²) at harmonics 1, 2, 3 of the step frequency; lat: lateral amplitude at the stride
    frequency (m/s²); gyro: roll, pitch, yaw amplitudes (rad/s); pitch_deg: trunk/pelvis tilt
    (forward positive); sway: slow postural acceleration noise (m/s²).
    """

    step_hz: float
    vert: tuple[float, float, float]
    fwd: tuple[float, float, float]
    lat: float
    gyro: tuple[float, float, float]
    pitch_deg: float
    sway: float


MODELS: dict[str, ActivityModel] = {
    "walking": ActivityModel(1.85, (2.4, 0.9, 0.3), (1.4, 0.6, 0.2), 0.9, (0.25, 0.2, 0.4), 2.0, 0.15),
    "running": ActivityModel(2.75, (8.5, 4.0, 1.8), (3.5, 1.8, 0.8), 2.2, (0.6, 0.5, 0.9), 8.0, 0.4),
    "standing": ActivityModel(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, (0.0, 0.0, 0.0), 0.0, 0.08),
    "sitting": ActivityModel(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, (0.0, 0.0, 0.0), -22.0, 0.05),
    "stairs_up": ActivityModel(1.5, (2.0, 1.3, 0.4), (1.2, 0.5, 0.2), 0.8, (0.3, 0.35, 0.3), 10.0, 0.2),
    "stairs_down": ActivityModel(1.8, (3.2, 1.8, 1.1), (1.3, 0.8, 0.4), 1.0, (0.3, 0.3, 0.35), -4.0, 0.2),
}


def _ar1_filter(e: np.ndarray, a: float, y0: np.ndarray) -> np.ndarray:
    """y_k = a·y_(k−1) + e_k for each column of e (n, d), from y0, in vectorised blocks.

    Within a block y_k = a^k·(y0 + Σ_{j≤k} a^(−j)·e_j); blocks are short enough that a^(−j) stays
    below e^10, so the closed form keeps its precision.
    """
    n = len(e)
    block = max(1, min(512, int(10.0 / max(-np.log(a), 1e-12))))
    out = np.empty_like(e)
    prev = np.asarray(y0, np.float64)
    for s in range(0, n, block):
        chunk = e[s : s + block]
        pw = a ** np.arange(1, len(chunk) + 1)[:, None]
        y = pw * (prev + np.cumsum(chunk / pw, axis=0))
        out[s : s + len(chunk)] = y
        prev = y[-1]
    return out


def _rot(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (
        np.cos(roll),
        np.sin(roll),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(yaw),
        np.sin(yaw),
    )
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    out: np.ndarray = rz @ ry @ rx
    return out


class SyntheticImu:
    """Stream a subject's IMU signal over an activity schedule.

    Axes (body frame before mounting): x forward, y left, z up; the accelerometer reads specific force
    (+9.81 m/s² on z when upright and still). `activities` is a list of (name, seconds) bouts, or
    None for an endless random schedule of 10–40 s bouts. `subject_seed` fixes the subject: cadence,
    amplitudes, harmonic phases, posture and sensor mounting; `subject_shift` scales how far subjects
    differ from the average one (0 = all identical, 1 = typical, 2 = strong shift, e.g. to test
    on-device adaptation). `noise` and `drift` scale white noise (0.05 m/s², 0.005 rad/s) and bias
    random walks (0.002 m/s²/√s, 0.0005 rad/s/√s). Labels index `ACTIVITIES`.

    Example::

        imu = SyntheticImu([("walking", 30), ("sitting", 20)], subject_seed=3, rate_hz=50)
        x, y = imu.read(500)        # float32 (500, 6): ax, ay, az, gx, gy, gz;  int64 (500,)
    """

    label_names = ACTIVITIES

    def __init__(
        self,
        activities: Sequence[tuple[str, float]] | None = None,
        subject_seed: int = 0,
        *,
        rate_hz: float = 50.0,
        noise: float = 1.0,
        drift: float = 1.0,
        subject_shift: float = 1.0,
        seed: int | None = None,
        transition_s: float = 1.0,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        for name, dur in activities or ():
            if name not in ACTIVITIES:
                raise ValueError(f"unknown activity {name!r}; activities: {', '.join(ACTIVITIES)}")
            if dur <= 0:
                raise ValueError(f"activity {name!r}: duration must be > 0 s, got {dur}")
        self.rate_hz, self.noise, self.drift = float(rate_hz), float(noise), float(drift)
        self.transition_s = float(transition_s)
        s = float(subject_shift)
        subj = np.random.default_rng([int(subject_seed), 7919])
        self.rng = np.random.default_rng([int(subject_seed), 104729, 0 if seed is None else int(seed) + 1])
        # Subject: one draw per subject, scaled by subject_shift.
        self.cadence = {
            a: float(np.clip(1.0 + s * 0.07 * subj.standard_normal(), 0.7, 1.3)) for a in ACTIVITIES
        }
        self.amp = {a: np.clip(1.0 + s * 0.18 * subj.standard_normal(6), 0.4, 1.8) for a in ACTIVITIES}
        self.phase = {a: s * 0.5 * subj.standard_normal(6) for a in ACTIVITIES}
        self.pitch_off = {a: float(s * np.deg2rad(5.0) * subj.standard_normal()) for a in ACTIVITIES}
        self.mount = _rot(*(s * np.deg2rad(10.0) * subj.standard_normal(3)))
        self.asym = float(np.clip(0.15 + s * 0.1 * subj.standard_normal(), 0.0, 0.6))  # limp at stride freq
        # Sensor state.
        self.bias = np.concatenate(
            [0.05 * drift * self.rng.standard_normal(3), 0.01 * drift * self.rng.standard_normal(3)]
        )
        self._sway = np.zeros(3)
        self._phase = 0.0
        self._cad = np.zeros(1)
        self._n = 0
        self._bouts: list[tuple[int, float]] = [(ACTIVITIES.index(a), float(d)) for a, d in activities or ()]
        self._random = activities is None
        self._ends = np.cumsum([d for _, d in self._bouts]) if self._bouts else np.zeros(0)

    @property
    def t_s(self) -> float:
        """Time of the next sample (s)."""
        return self._n / self.rate_hz

    @property
    def duration_s(self) -> float | None:
        """Total length of a fixed schedule, None for an endless random one."""
        return None if self._random else float(self._ends[-1]) if len(self._ends) else 0.0

    @property
    def remaining(self) -> int | None:
        """Samples left in a fixed schedule (None if endless)."""
        d = self.duration_s
        return None if d is None else max(0, int(np.floor(d * self.rate_hz + 1e-9)) - self._n)

    def _extend(self, t_end: float) -> None:
        while self._random and (not len(self._ends) or self._ends[-1] <= t_end):
            self._bouts.append((int(self.rng.integers(len(ACTIVITIES))), float(self.rng.uniform(10, 40))))
            self._ends = np.cumsum([d for _, d in self._bouts])

    def read(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `n` samples (fewer at the end of a fixed schedule): float32 (n, 6), int64 labels (n,)."""
        rem = self.remaining
        if rem is not None:
            n = min(n, rem)
        if n <= 0:
            return np.zeros((0, 6), np.float32), np.zeros(0, np.int64)
        dt = 1.0 / self.rate_hz
        t = (self._n + np.arange(n)) * dt
        self._extend(float(t[-1]))
        bout = np.minimum(np.searchsorted(self._ends, t, "right"), len(self._bouts) - 1)
        act = np.array([b[0] for b in self._bouts])[bout]
        prev = np.array([self._bouts[max(i - 1, 0)][0] for i in range(len(self._bouts))])[bout]
        starts = np.concatenate([[0.0], self._ends])[bout]
        w = np.clip((t - starts) / max(self.transition_s, 1e-9), 0.0, 1.0)
        w[bout == 0] = 1.0

        def mix(values: dict[str, object]) -> np.ndarray:
            table = np.array([values[a] for a in ACTIVITIES], dtype=np.float64)
            wa = w.reshape((-1,) + (1,) * (table.ndim - 1))
            out: np.ndarray = wa * table[act] + (1.0 - wa) * table[prev]
            return out

        models = {a: MODELS[a] for a in ACTIVITIES}
        step_hz = mix({a: models[a].step_hz * self.cadence[a] for a in ACTIVITIES})
        # Cadence wanders by a few % (AR(1) over ~5 s) so windows are not exact copies.
        wander = self._ar1(self._cad, n, dt, tau_s=5.0, sigma=0.03)[:, 0]
        self._cad = np.array([wander[-1]])
        phase = self._phase + 2 * np.pi * np.cumsum(step_hz * (1.0 + wander)) * dt
        self._phase = float(phase[-1] % (4 * np.pi))
        amp = mix({a: self.amp[a] for a in ACTIVITIES})  # (n, 6) multipliers
        ph = mix({a: self.phase[a] for a in ACTIVITIES})
        vert = mix({a: models[a].vert for a in ACTIVITIES})
        fwd = mix({a: models[a].fwd for a in ACTIVITIES})
        lat = mix({a: models[a].lat for a in ACTIVITIES})
        gyr = mix({a: models[a].gyro for a in ACTIVITIES})
        h = np.arange(1, 4)
        hp = phase[:, None] * h
        acc = np.zeros((n, 3))
        acc[:, 2] = amp[:, 0] * (vert * np.cos(hp + ph[:, :1])).sum(1)
        acc[:, 0] = amp[:, 1] * (fwd * np.cos(hp + ph[:, 1:2] + 0.8)).sum(1)
        stride = phase / 2 + ph[:, 2]
        acc[:, 1] = amp[:, 2] * lat * np.cos(stride)
        acc[:, 2] += self.asym * vert[:, 0] * np.cos(stride)  # left/right asymmetry
        gyro = np.stack(
            [
                amp[:, 3] * gyr[:, 0] * np.cos(stride + 0.5),
                amp[:, 4] * gyr[:, 1] * np.cos(phase + ph[:, 4]),
                amp[:, 5] * gyr[:, 2] * np.cos(stride + ph[:, 5]),
            ],
            axis=1,
        )
        sway_sigma = mix({a: models[a].sway for a in ACTIVITIES})
        sway = self._ar1(self._sway, n, dt, tau_s=0.8, sigma=1.0)
        self._sway = sway[-1].copy()
        acc += sway * sway_sigma[:, None]
        gyro += 0.1 * sway * sway_sigma[:, None]
        pitch = mix({a: np.deg2rad(models[a].pitch_deg) + self.pitch_off[a] for a in ACTIVITIES})
        acc[:, 0] += -GRAVITY * np.sin(pitch)
        acc[:, 2] += GRAVITY * np.cos(pitch)
        acc = acc @ self.mount.T
        gyro = gyro @ self.mount.T
        # Bias random walk (drift) and white noise.
        steps = (
            self.rng.standard_normal((n, 6)) * np.sqrt(dt) * self.drift * np.array([0.002] * 3 + [0.0005] * 3)
        )
        bias = self.bias + np.cumsum(steps, axis=0)
        self.bias = bias[-1]
        out = np.concatenate([acc, gyro], axis=1) + bias
        out += self.rng.standard_normal((n, 6)) * self.noise * np.array([0.05] * 3 + [0.005] * 3)
        self._n += n
        return out.astype(np.float32), act.astype(np.int64)

    def _ar1(self, state: np.ndarray, n: int, dt: float, tau_s: float, sigma: float) -> np.ndarray:
        """Ornstein–Uhlenbeck noise (n, d) with std `sigma` and time constant `tau_s`, from `state` (d,)."""
        a = float(np.exp(-dt / tau_s))
        e = self.rng.standard_normal((n, len(state))) * sigma * np.sqrt(1 - a * a)
        return _ar1_filter(e, a, state)

    def recording(self, seconds: float | None = None) -> ImuRecording:
        """Generate `seconds` (default: the rest of a fixed schedule) as an ImuRecording."""
        n = self.remaining if seconds is None else int(round(seconds * self.rate_hz))
        if n is None:
            raise ValueError("an endless random schedule needs `seconds`")
        t0 = self.t_s
        x, y = self.read(n)
        t = t0 + np.arange(len(x)) / self.rate_hz
        return ImuRecording(t, x[:, :3].astype(np.float64), x[:, 3:].astype(np.float64), y, ACTIVITIES)


def write_synthetic_dataset(
    folder: str | Path,
    n_subjects: int = 10,
    minutes_per_subject: float = 5.0,
    rate_hz: float = 50.0,
    seed: int = 0,
    *,
    subject_shift: float = 1.0,
    noise: float = 1.0,
    drift: float = 1.0,
    activities: Sequence[str] = ACTIVITIES,
) -> list[Path]:
    """Write `subject_XX.csv` per subject (the CSV layout of `nodes.sensors.imu.csv_io`), balanced over activities.

    Each subject performs the activities in shuffled rounds of 15–45 s bouts for
    `minutes_per_subject`. Subject i uses subject_seed = seed·1000 + i, so subjects are reproducible
    and disjoint across seeds.
    """
    unknown = [a for a in activities if a not in ACTIVITIES]
    if unknown:
        raise ValueError(f"unknown activities {unknown}; choose from {', '.join(ACTIVITIES)}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_subjects):
        rng = np.random.default_rng([seed, i])
        total = minutes_per_subject * 60.0
        bouts: list[tuple[str, float]] = []
        while sum(d for _, d in bouts) < total:
            for a in rng.permutation(list(activities)):
                bouts.append((str(a), float(rng.uniform(15, 45))))
        imu = SyntheticImu(
            bouts,
            subject_seed=seed * 1000 + i,
            rate_hz=rate_hz,
            noise=noise,
            drift=drift,
            subject_shift=subject_shift,
            seed=seed,
        )
        rec = imu.recording(total)
        path = out / f"subject_{i:02d}.csv"
        write_imu_csv(path, rec)
        paths.append(path)
    return paths
