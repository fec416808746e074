"""Hand-like gestures for the synthetic event camera: a labelled, learnable-but-not-trivial data source.

A hand (palm, four fingers, thumb, forearm) is ~25 Gaussian blobs over a textured background that
shakes slightly (camera jitter). Each class is a trajectory: swipes, circles, a wave, a push.
Every sample draws its own hand size, position, speed, timing, direction jitter, contrast sign,
background and distractor, so one event frame does not give the class away: direction and order
matter (swipe left vs right, circle cw vs ccw).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenes import blob_image, low_rank_product

__all__ = ["GESTURE_CLASSES", "HandGesture", "GestureSequence"]

GESTURE_CLASSES: tuple[str, ...] = (
    "swipe_left",
    "swipe_right",
    "swipe_up",
    "swipe_down",
    "circle_cw",
    "circle_ccw",
    "wave",
    "push",
)

# Hand blobs in units of the palm radius, fingers pointing to −y (up) at angle 0: (x, y, sigma).
_PALM = [(0.0, 0.0, 0.75), (-0.35, 0.2, 0.55), (0.35, 0.2, 0.55)]
_FINGERS = [
    (-0.45, -0.1, 0.95),
    (-0.15, -0.05, 1.1),
    (0.15, 0.05, 1.05),
    (0.45, 0.15, 0.85),
]  # base x, angle, length


def _min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile 10τ³ − 15τ⁴ + 6τ⁵ (Flash & Hogan 1985): how reaching hands move."""
    tau = np.clip(tau, 0.0, 1.0)
    out: np.ndarray = tau**3 * (10 - 15 * tau + 6 * tau**2)
    return out


def _hand_blobs(spread: float) -> np.ndarray:
    pts = list(_PALM)
    for bx, ang, length in _FINGERS:
        a = ang * spread
        for f in (0.35, 0.7, 1.0):
            pts.append((bx + np.sin(a) * length * f, -0.8 - np.cos(a) * length * f, 0.2))
    for f in (0.4, 0.8):  # thumb, pointing out and up at ~60°
        pts.append((0.7 + 0.55 * f, -0.1 - 0.35 * f, 0.22))
    return np.asarray(pts, np.float32)


@dataclass
class _Pose:
    """Hand poses at T times: centre (px), scale (palm radius, px), angle (rad); each shape (T,)."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle: np.ndarray


class HandGesture:
    """One gesture of class `cls` from `t0_us` for `duration_us`; the hand rests before and after.

    Example::

        g = HandGesture("circle_cw", 64, 64, np.random.default_rng(1), duration_us=500_000)
        frame = g.render(250_000)        # float32 (64, 64) in [0, 1]
    """

    def __init__(
        self,
        cls: str,
        width: int,
        height: int,
        rng: np.random.Generator,
        *,
        t0_us: int = 0,
        duration_us: int = 500_000,
    ) -> None:
        if cls not in GESTURE_CLASSES:
            raise ValueError(f"unknown gesture {cls!r}; classes: {', '.join(GESTURE_CLASSES)}")
        self.cls, self.label = cls, GESTURE_CLASSES.index(cls)
        self.width, self.height = int(width), int(height)
        self.t0_us, self.duration_us = int(t0_us), int(duration_us)
        s = min(width, height)
        r = rng
        self.scale = float(r.uniform(0.07, 0.11) * s)
        self.blobs = _hand_blobs(float(r.uniform(0.6, 1.4)))
        # Active part of the trial: starts at 0–25 %, lasts 55–85 % of it (clipped to the end).
        self.a0 = float(r.uniform(0.0, 0.25))
        self.a1 = min(1.0, self.a0 + float(r.uniform(0.55, 0.85)))
        self.center = np.array([width * r.uniform(0.35, 0.65), height * r.uniform(0.35, 0.65)])
        self.jitter_dir = float(np.deg2rad(r.uniform(-15, 15)))
        self.travel = float(r.uniform(0.35, 0.6))
        self.radius = float(r.uniform(0.14, 0.24) * s)
        self.turns = float(r.uniform(0.9, 1.3))
        self.phi0 = float(r.uniform(0, 2 * np.pi))
        self.wave_hz = float(r.uniform(2.0, 3.5))
        self.wave_deg = float(r.uniform(18, 35))
        self.push_gain = float(r.uniform(1.4, 1.9))
        self.tilt = float(np.deg2rad(r.uniform(-20, 20)))
        # Appearance: hand brighter than the background, or darker 30 % of the time (polarity flips).
        bg = float(r.uniform(0.15, 0.45))
        hand = float(r.uniform(0.6, 0.95))
        self.bg_level, self.hand_level = (hand, bg) if r.random() < 0.3 else (bg, hand)
        # Background: a separable sum of k sinusoids per axis; shifting it by the camera jitter only
        # needs the sin/cos tables below and one (H×k)(k×W) product.
        k = 4
        fx, fy = r.uniform(0.05, 0.25, (2, k, 1))  # rad/px
        px, py = r.uniform(0, 2 * np.pi, (2, k, 1))
        xs, ys = np.arange(width), np.arange(height)
        self._tex = [
            (np.sin(f * c + ph).astype(np.float32), np.cos(f * c + ph).astype(np.float32), f[:, 0])
            for f, c, ph in ((fx, xs, px), (fy, ys, py))
        ]
        self.tex_a = np.float32(r.uniform(0.03, 0.12) / k)
        self.jit_px = float(r.uniform(0.0, 0.5))
        self.jit_hz = r.uniform(4, 12, 2)
        self.jit_ph = r.uniform(0, 2 * np.pi, 2)
        self.distractor = None
        if r.random() < 0.3:
            p0 = r.uniform(0, 1, 2) * (width, height)
            v = r.normal(0, 0.6 * s, 2)  # px/s
            self.distractor = (p0, v, float(r.uniform(0.03, 0.06) * s))
        self._arm = np.arange(1, 8, dtype=np.float32)
        self._xs = np.arange(width, dtype=np.float32)
        self._ys = np.arange(height, dtype=np.float32)

    def label_at(self, t_us: int) -> int:
        return self.label

    def pose(self, t_us: np.ndarray) -> _Pose:
        """Hand poses at the times `t_us` (µs, array)."""
        t = np.asarray(t_us, np.float64)
        tau = (t - self.t0_us) / max(self.duration_us, 1)
        u = np.clip((tau - self.a0) / (self.a1 - self.a0), 0.0, 1.0)
        m = _min_jerk(u)
        cx = np.full(t.shape, self.center[0])
        cy = np.full(t.shape, self.center[1])
        angle = np.full(t.shape, self.tilt)
        scale = np.full(t.shape, self.scale)
        c = self.cls
        if c.startswith("swipe_"):
            base = {"swipe_left": np.pi, "swipe_right": 0.0, "swipe_up": -np.pi / 2, "swipe_down": np.pi / 2}[
                c
            ]
            d = base + self.jitter_dir
            extent = self.travel * (self.width if c in ("swipe_left", "swipe_right") else self.height)
            off = (m - 0.5) * extent
            cx += np.cos(d) * off
            cy += np.sin(d) * off
        elif c.startswith("circle_"):
            sign = 1.0 if c == "circle_cw" else -1.0  # image y points down: +φ looks clockwise
            phi = self.phi0 + sign * 2 * np.pi * self.turns * u
            cx += self.radius * np.cos(phi)
            cy += self.radius * np.sin(phi)
        elif c == "wave":
            active = (u > 0.0) & (u < 1.0)
            w = np.sin(2 * np.pi * self.wave_hz * (t - self.t0_us) * 1e-6) * active
            angle += np.deg2rad(self.wave_deg) * w
            cx += 0.3 * self.scale * w
        elif c == "push":
            scale *= 1.0 + (self.push_gain - 1.0) * m
        return _Pose(cx, cy, scale, angle)

    def render(self, t_us: int) -> np.ndarray:
        """Intensity float32 (H, W) in [0, 1] at t_us."""
        frame: np.ndarray = self.render_many(np.array([t_us]))[0]
        return frame

    def render_many(self, t_us: np.ndarray) -> np.ndarray:
        """Intensities float32 (T, H, W) at the times `t_us`: one batched product for all frames."""
        t = np.asarray(t_us, np.float64)
        p = self.pose(t)
        tt = (t - self.t0_us) * 1e-6
        jit = self.jit_px * np.sin(2 * np.pi * self.jit_hz[:, None] * tt[None, :] + self.jit_ph[:, None])
        jx, jy = jit[0][:, None], jit[1][:, None]  # (T, 1)
        ca, sa, sc = np.cos(p.angle)[:, None], np.sin(p.angle)[:, None], p.scale[:, None]
        b = self.blobs
        hx = p.cx[:, None] + jx + sc * (b[:, 0] * ca - b[:, 1] * sa)
        hy = p.cy[:, None] + jy + sc * (b[:, 0] * sa + b[:, 1] * ca)
        # Forearm: from the wrist straight down past the bottom border.
        ax = (p.cx[:, None] + jx - sc * 0.9 * sa) + 0 * self._arm
        ay = (p.cy[:, None] + jy + sc * 0.9 * ca) + sc * 0.6 * self._arm
        cxs, cys = [hx, ax], [hy, ay]
        sig = [b[:, 2] * sc, 0.5 * sc + 0 * self._arm]
        amp = [np.ones(hx.shape), np.ones(ax.shape)]
        if self.distractor is not None:
            p0, v, rad = self.distractor
            cxs.append((p0[0] + v[0] * tt)[:, None])
            cys.append((p0[1] + v[1] * tt)[:, None])
            sig.append(np.full((len(t), 1), rad))
            amp.append(np.full((len(t), 1), 0.5))
        mask = blob_image(
            np.concatenate(cxs, 1),
            np.concatenate(cys, 1),
            np.concatenate(sig, 1),
            self.width,
            self.height,
            self._xs,
            self._ys,
            np.concatenate(amp, 1),
        )
        mask *= np.float32(1.6)
        np.minimum(mask, np.float32(1.0), out=mask)
        (sx, cx_, fx), (sy, cy_, fy) = self._tex  # (k, W), (k, W), (k,)
        tx = sx * np.cos(fx * jx)[:, :, None] - cx_ * np.sin(fx * jx)[:, :, None]  # (T, k, W)
        ty = sy * np.cos(fy * jy)[:, :, None] - cy_ * np.sin(fy * jy)[:, :, None]
        img = low_rank_product(ty.transpose(0, 2, 1).astype(np.float32), tx.astype(np.float32))
        img *= self.tex_a
        img += np.float32(self.bg_level)
        hand = np.float32(self.hand_level) - img  # img + (hand − img)·mask, in place
        hand *= mask
        img += hand
        np.clip(img, 0.0, 1.0, out=img)
        out: np.ndarray = img
        return out


class GestureSequence:
    """An endless stream of random gesture trials, `trial_us` each; `label_at(t)` is the trial's class."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        classes: list[str] | None = None,
        seed: int | np.random.Generator = 0,
        trial_us: int = 1_000_000,
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.classes = list(classes or GESTURE_CLASSES)
        unknown = [c for c in self.classes if c not in GESTURE_CLASSES]
        if unknown:
            raise ValueError(f"unknown gesture classes {unknown}; choose from {', '.join(GESTURE_CLASSES)}")
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.trial_us = int(trial_us)
        self._trial: HandGesture | None = None
        self._index = -1

    def _at(self, t_us: int) -> HandGesture:
        i = int(t_us // self.trial_us)
        if self._trial is None or i != self._index:
            cls = self.classes[int(self.rng.integers(len(self.classes)))]
            self._trial = HandGesture(
                cls, self.width, self.height, self.rng, t0_us=i * self.trial_us, duration_us=self.trial_us
            )
            self._index = i
        return self._trial

    def label_at(self, t_us: int) -> int:
        """Index into `self.classes` of the gesture shown at t_us."""
        return self.classes.index(self._at(t_us).cls)

    def render(self, t_us: int) -> np.ndarray:
        return self._at(t_us).render(t_us)

    def render_many(self, t_us: np.ndarray) -> np.ndarray:
        """Frames (T, H, W) at increasing times, split by trial."""
        t = np.asarray(t_us)
        trial = t // self.trial_us
        cuts = np.flatnonzero(np.diff(trial)) + 1
        return np.concatenate([self._at(int(part[0])).render_many(part) for part in np.split(t, cuts)])
