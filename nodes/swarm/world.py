"""A shared synthetic world: moving targets as a closed-form function of (seed, time), sectors, views, coverage.

Every agent process evaluates the same `World` at the same world time (µs on the run clock), so no
process owns the world and a restarted agent sees exactly what its peers see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["World", "Sector", "sectors", "sector_of", "SectorScene", "coverage", "clamp_to", "fov_box"]


def _reflect(u: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Fold an unbounded coordinate into [lo, hi] as a bouncing ball would; also the sign of its motion."""
    span = np.asarray(hi, np.float64) - lo
    m = np.mod(u - lo, 2.0 * span)
    forward = m <= span
    return lo + np.where(forward, m, 2.0 * span - m), np.where(forward, 1.0, -1.0)


@dataclass(frozen=True)
class World:
    """`n_targets` discs moving in a `width`×`height` px world, bouncing off its walls.

    Target k follows u_k(t) = p0_k + v_k·t + a_k·sin(ω_k·t + φ_k) per axis (px, t in s), folded into
    [r, size − r] by reflection; speeds |v_k| are drawn from `speed_px_s`, the sine adds a gentle
    curve of amplitude `wobble_px`. Positions are a pure function of (seed, t): any process computes
    the same world at the same time, at any time, without stepping.

    Example::

        w = World(seed=3)
        xy = w.positions(1_500_000)          # (n_targets, 2) px at t = 1.5 s
        xy, v = w.state(np.array([0, 10_000]))   # (T, n, 2) positions and velocities (px/s)
    """

    seed: int = 0
    width: float = 192.0
    height: float = 192.0
    n_targets: int = 5
    radius_px: float = 4.0
    speed_px_s: tuple[float, float] = (15.0, 35.0)
    wobble_px: float = 8.0
    intensity: float = 0.9
    background: float = 0.25
    #: Per-target path parameters (p0, v, ω, φ), each (n_targets, 2); drawn from `seed` in __post_init__.
    _p: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.width <= 4 * self.radius_px or self.height <= 4 * self.radius_px:
            raise ValueError(
                f"world {self.width}×{self.height} px is too small for targets of radius {self.radius_px} px"
            )
        if self.n_targets < 0:
            raise ValueError(f"n_targets must be ≥ 0, got {self.n_targets}")
        rng = np.random.default_rng(self.seed)
        n, r = self.n_targets, self.radius_px
        p0 = np.stack([rng.uniform(r, self.width - r, n), rng.uniform(r, self.height - r, n)], 1)
        speed = rng.uniform(*self.speed_px_s, n)
        heading = rng.uniform(0, 2 * np.pi, n)
        v = np.stack([speed * np.cos(heading), speed * np.sin(heading)], 1)
        omega = 2 * np.pi / rng.uniform(4.0, 10.0, (n, 2))  # one wobble every 4–10 s
        phase = rng.uniform(0, 2 * np.pi, (n, 2))
        object.__setattr__(self, "_p", (p0, v, omega, phase))

    @property
    def hi(self) -> np.ndarray:
        return np.array([self.width - self.radius_px, self.height - self.radius_px])

    def state(self, t_us: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities (px, px/s) at times `t_us`: shapes (..., n_targets, 2)."""
        p0, v, omega, phase = self._p
        t = (np.asarray(t_us, np.float64) * 1e-6)[..., None, None]
        a = self.wobble_px
        u = p0 + v * t + a * np.sin(omega * t + phase)
        du = v + a * omega * np.cos(omega * t + phase)
        pos, sign = _reflect(u, self.radius_px, self.hi)
        return pos, du * sign

    def positions(self, t_us: np.ndarray | int) -> np.ndarray:
        """Target centres (px) at `t_us`: (n_targets, 2), or (T, n_targets, 2) for an array of times."""
        return self.state(t_us)[0]


@dataclass(frozen=True)
class Sector:
    """The part of the world one agent is responsible for: [x0, x1) × [y0, y1) px."""

    index: int
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Which of the points (..., 2) lie in this sector."""
        xy = np.asarray(xy, np.float64)
        return (
            (xy[..., 0] >= self.x0)
            & (xy[..., 0] < self.x1)
            & (xy[..., 1] >= self.y0)
            & (xy[..., 1] < self.y1)
        )


def sectors(n_agents: int, width: float, height: float) -> list[Sector]:
    """Split the world into `n_agents` sectors on a near-square grid (row-major)."""
    if n_agents < 1:
        raise ValueError(f"n_agents must be ≥ 1, got {n_agents}")
    cols = math.ceil(math.sqrt(n_agents))
    rows = math.ceil(n_agents / cols)
    out = []
    for i in range(n_agents):
        r, c = divmod(i, cols)
        # The last row may have fewer sectors: they share its width.
        in_row = cols if r < rows - 1 else n_agents - cols * (rows - 1)
        w = width / in_row
        out.append(Sector(i, c * w, r * height / rows, (c + 1) * w, (r + 1) * height / rows))
    return out


def sector_of(secs: list[Sector], xy: np.ndarray) -> np.ndarray:
    """Index of the sector holding each point (..., 2); −1 outside every sector."""
    out = np.full(np.asarray(xy).shape[:-1], -1, np.int64)
    for s in secs:
        out[s.contains(xy)] = s.index
    return out


def fov_box(center: np.ndarray | tuple[float, float], fov_px: int) -> tuple[float, float, float, float]:
    """The world box (x0, y0, x1, y1) a camera of `fov_px`×`fov_px` pixels centred at `center` sees."""
    cx, cy = float(center[0]), float(center[1])
    h = fov_px / 2.0
    return cx - h, cy - h, cx + h, cy + h


def clamp_to(xy: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Clip a point (2,) into a box (x0, y0, x1, y1)."""
    return np.array([min(max(float(xy[0]), box[0]), box[2]), min(max(float(xy[1]), box[1]), box[3])])


def coverage(targets: np.ndarray, centers: np.ndarray, fov_px: int, radius_px: float = 0.0) -> np.ndarray:
    """Which targets (T, n, 2) lie inside at least one camera's view, cameras centred at (T, m, 2).

    A target counts as seen when its centre is at least `radius_px` inside a view. Returns (T, n) bool;
    its mean is the coverage metric of the swarm.
    """
    targets, centers = np.asarray(targets, np.float64), np.asarray(centers, np.float64)
    half = fov_px / 2.0 - radius_px
    d = np.abs(targets[..., :, None, :] - centers[..., None, :, :])  # (T, n, m, 2)
    seen: np.ndarray = np.any(np.all(d <= half, axis=-1), axis=-1)
    return seen


class SectorScene:
    """What one agent's camera films: the world's targets inside a `fov_px` view whose top-left corner
    is `origin` (world px), rendered as soft-edged discs on a uniform background.

    Implements the synthetic camera's scene protocol (`render`, `render_many`); time is world time
    (µs). Moving `origin` between batches moves the view; pixels are 1 world px.

    Example::

        scene = SectorScene(World(seed=1), 64)
        scene.origin = (10.0, 20.0)
        img = scene.render(0)                 # float32 (64, 64), intensities in [0, 1]
    """

    def __init__(self, world: World, fov_px: int, *, edge_px: float = 0.8) -> None:
        self.world, self.width, self.height = world, int(fov_px), int(fov_px)
        self.edge = float(edge_px)
        self.origin: tuple[float, float] = (0.0, 0.0)
        self._xs = np.arange(self.width, dtype=np.float32)
        self._ys = np.arange(self.height, dtype=np.float32)

    def render(self, t_us: int) -> np.ndarray:
        out: np.ndarray = self.render_many(np.array([t_us]))[0]
        return out

    def render_many(self, ts: np.ndarray) -> np.ndarray:
        w = self.world
        frames = np.full((len(ts), self.height, self.width), w.background, np.float32)
        local = w.positions(np.asarray(ts)) - np.asarray(self.origin)  # (T, n, 2)
        reach = w.radius_px + 2 * self.edge + 1
        for i, pts in enumerate(local):
            for x, y in pts:
                if not (-reach < x < self.width + reach and -reach < y < self.height + reach):
                    continue
                # Draw each disc on its bounding patch only: cost ∝ disc area, not sensor area.
                x0, x1 = max(0, int(x - reach)), min(self.width, int(x + reach) + 1)
                y0, y1 = max(0, int(y - reach)), min(self.height, int(y + reach) + 1)
                d = np.hypot(self._xs[None, x0:x1] - x, self._ys[y0:y1, None] - y) - w.radius_px
                m = np.clip(0.5 - d / (2 * self.edge), 0.0, 1.0)
                patch = frames[i, y0:y1, x0:x1]
                patch += m * (w.intensity - patch)
        return frames
