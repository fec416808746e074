"""Procedural scenes the synthetic event camera films: bars, shapes, movable targets and hand gestures.

A scene is anything with `render(t_us) -> float32 (H, W)` intensities in [0, 1] (and optionally
`label_at(t_us) -> int`). Blob-based shapes render as a low-rank product of 1-D Gaussians
(`gy.T @ gx`), so a hand of ~20 blobs costs one small matrix product per frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Scene",
    "FunctionScene",
    "MovingBars",
    "Shapes",
    "Target",
    "Targets",
    "blob_image",
    "low_rank_product",
]


@runtime_checkable
class Scene(Protocol):
    """What the camera films: intensity in [0, 1] as float32 (height, width) at time t_us."""

    width: int
    height: int

    def render(self, t_us: int) -> np.ndarray: ...


def blob_image(
    cx: np.ndarray,
    cy: np.ndarray,
    sigma: np.ndarray,
    width: int,
    height: int,
    xs: np.ndarray | None = None,
    ys: np.ndarray | None = None,
    amp: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of isotropic Gaussian blobs as float32 (H, W), or (T, H, W) for (T, K) inputs.

    Blob k is amp_k·exp(−((x−cx_k)² + (y−cy_k)²)/(2σ_k²)); being separable, the whole image is one
    (H×K)(K×W) matrix product per frame.
    """
    xs = np.arange(width, dtype=np.float32) if xs is None else xs
    ys = np.arange(height, dtype=np.float32) if ys is None else ys
    cx, cy = np.asarray(cx, np.float32), np.asarray(cy, np.float32)
    inv = (np.float32(-0.5) / np.asarray(sigma, np.float32) ** 2)[..., None]
    # Exponents are floored at −40 so that far tails (and their products in the matmul) stay normal
    # floats: subnormal float32 arithmetic is ~100× slower on x86 and made 320×240 frames 30× slower.
    gx = np.exp(np.maximum((xs - cx[..., None]) ** 2 * inv, np.float32(-40.0)))  # (..., K, W)
    gy = np.exp(np.maximum((ys - cy[..., None]) ** 2 * inv, np.float32(-40.0)))  # (..., K, H)
    if amp is not None:
        gx *= np.asarray(amp, np.float32)[..., None]
    return low_rank_product(np.swapaxes(gy, -1, -2), gx)


#: Largest m·n·k per BLAS call. OpenBLAS threads sgemm above 65,536 × 4 (interface/gemm.c,
#: GEMM_MULTITHREAD_THRESHOLD); on a loaded 2-vCPU host its spinning threads made a 10-frame
#: 320×240 render take 540 ms instead of 0.8 ms [M]. Smaller calls stay single-threaded.
_GEMM_CHUNK = 200_000


def low_rank_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(…, H, K) @ (…, K, W) as float32, in row blocks small enough to keep BLAS single-threaded."""
    h, k, w = a.shape[-2], a.shape[-1], b.shape[-1]
    out = np.empty(a.shape[:-1] + (w,), np.float32)
    rows = max(1, _GEMM_CHUNK // max(1, k * w))
    for r in range(0, h, rows):
        np.matmul(a[..., r : r + rows, :], b, out=out[..., r : r + rows, :])
    return out


class FunctionScene:
    """Wrap any callable `f(t_us) -> (H, W)` intensity array as a scene."""

    def __init__(self, fn: Callable[[int], np.ndarray], width: int, height: int) -> None:
        self.fn, self.width, self.height = fn, int(width), int(height)

    def render(self, t_us: int) -> np.ndarray:
        return np.clip(np.asarray(self.fn(t_us), np.float32), 0.0, 1.0)


class MovingBars:
    """A square-wave grating (bars `period_px` apart) drifting at `speed_px_s` along `angle_deg`."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        period_px: float = 16.0,
        speed_px_s: float = 40.0,
        angle_deg: float = 0.0,
        contrast: float = 0.6,
        edge_px: float = 0.7,
    ) -> None:
        self.width, self.height = int(width), int(height)
        a = np.deg2rad(angle_deg)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        self._u = (x * np.cos(a) + y * np.sin(a)).astype(np.float32)
        self.period, self.speed, self.contrast, self.edge = period_px, speed_px_s, contrast, edge_px

    def render(self, t_us: int) -> np.ndarray:
        phase = (self._u - self.speed * t_us * 1e-6) / self.period
        # A soft square wave: a steep tanh of a sine, so edges move by fractions of a pixel.
        s = np.tanh(np.sin(2 * np.pi * phase) * (self.period / (2 * np.pi * self.edge)))
        out: np.ndarray = (0.5 + 0.5 * self.contrast * s).astype(np.float32)
        return out


@dataclass
class Target:
    """A disc (or square) the `Targets` scene draws: position px, radius px, intensity, velocity px/s."""

    x: float
    y: float
    radius: float = 4.0
    intensity: float = 0.9
    vx: float = 0.0
    vy: float = 0.0
    shape: str = "disc"


class Targets:
    """Discs and squares at positions anyone may change while running (a world for swarm demos).

    `targets` is a plain list of `Target`; a controller can move, add or remove them between frames.
    With `move=True` each target also advances by its velocity and bounces off the borders.
    """

    def __init__(
        self,
        width: int,
        height: int,
        targets: list[Target] | None = None,
        *,
        background: float = 0.25,
        edge_px: float = 0.8,
        move: bool = True,
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.targets: list[Target] = list(targets or [])
        self.background, self.edge, self.move = background, edge_px, move
        self._y, self._x = np.mgrid[0:height, 0:width].astype(np.float32)
        self._t_last: int | None = None

    def render(self, t_us: int) -> np.ndarray:
        if self.move and self._t_last is not None:
            dt = (t_us - self._t_last) * 1e-6
            for tg in self.targets:
                tg.x += tg.vx * dt
                tg.y += tg.vy * dt
                if not 0 <= tg.x < self.width:
                    tg.vx, tg.x = -tg.vx, float(np.clip(tg.x, 0, self.width - 1))
                if not 0 <= tg.y < self.height:
                    tg.vy, tg.y = -tg.vy, float(np.clip(tg.y, 0, self.height - 1))
        self._t_last = t_us
        img = np.full((self.height, self.width), self.background, np.float32)
        for tg in self.targets:
            if tg.shape == "square":
                d = np.maximum(np.abs(self._x - tg.x), np.abs(self._y - tg.y)) - tg.radius
            else:
                d = np.hypot(self._x - tg.x, self._y - tg.y) - tg.radius
            m = np.clip(0.5 - d / (2 * self.edge), 0.0, 1.0)
            img += m * (tg.intensity - img)
        return img


class Shapes(Targets):
    """A few random discs and squares bouncing around: a generic moving-edge test scene."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        n: int = 3,
        seed: int | np.random.Generator = 0,
        speed_px_s: float = 30.0,
    ) -> None:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        s = min(width, height)
        targets = [
            Target(
                x=float(rng.uniform(0.2, 0.8) * width),
                y=float(rng.uniform(0.2, 0.8) * height),
                radius=float(rng.uniform(0.06, 0.14) * s),
                intensity=float(rng.uniform(0.6, 1.0)),
                vx=float(rng.normal(0, speed_px_s)),
                vy=float(rng.normal(0, speed_px_s)),
                shape=str(rng.choice(["disc", "square"])),
            )
            for _ in range(n)
        ]
        super().__init__(width, height, targets, background=0.2, move=True)
