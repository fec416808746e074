"""Event-cluster detection: where in one batch of events do moving targets fire (vectorised numpy)."""

from __future__ import annotations

import numpy as np

__all__ = ["detect_clusters"]


def _box3(grid: np.ndarray) -> np.ndarray:
    """3×3 neighbourhood sums of a 2-D grid (zero outside), by two 1-D passes."""
    rows = grid.copy()
    rows[:, 1:] += grid[:, :-1]
    rows[:, :-1] += grid[:, 1:]
    out = rows.copy()
    out[1:] += rows[:-1]
    out[:-1] += rows[1:]
    return out


def _local_peaks(s: np.ndarray) -> np.ndarray:
    """Cells whose value is a strict maximum over earlier neighbours and ≥ later ones (one peak per plateau)."""
    h, w = s.shape
    p = np.full((h + 2, w + 2), -1, s.dtype)
    p[1:-1, 1:-1] = s
    keep = np.ones(s.shape, bool)
    for k, (dy, dx) in enumerate((dy, dx) for dy in range(3) for dx in range(3)):
        if (dy, dx) == (1, 1):
            continue
        nb = p[dy : dy + h, dx : dx + w]
        keep &= (s > nb) if k < 4 else (s >= nb)
    return keep


def detect_clusters(
    x: np.ndarray,
    y: np.ndarray,
    width: int,
    height: int,
    *,
    cell_px: int = 4,
    min_events: int = 6,
    radius_px: float = 7.0,
) -> np.ndarray:
    """Centres of event clusters in one batch: (k, 3) float64 rows [x, y, n_events] in sensor px.

    Events are counted on a grid of `cell_px` cells; a cell whose 3×3 neighbourhood holds at least
    `min_events` events and is a local maximum seeds a cluster; the cluster centre is the mean of the
    events within `radius_px` of the seed, refined once (one mean-shift step); centres closer than
    `radius_px` are merged. A moving disc fires on its leading and trailing edges, so the mean of its
    events is its centre at mid-batch. Isolated noise events (≈1 Hz per pixel, SCIENCE.md 2.4)
    rarely reach `min_events` in one neighbourhood. Rows are sorted by (y, x): deterministic.

    Example::

        dets = detect_clusters(ev["x"], ev["y"], 64, 64)   # e.g. [[31.8, 12.1, 40.0]]
    """
    if len(x) == 0:
        return np.zeros((0, 3))
    xf = np.asarray(x, np.float64)
    yf = np.asarray(y, np.float64)
    gw, gh = -(-width // cell_px), -(-height // cell_px)
    cells = (yf.astype(np.int64) // cell_px) * gw + xf.astype(np.int64) // cell_px
    grid = np.bincount(cells, minlength=gw * gh).reshape(gh, gw)
    s = _box3(grid)
    seeds = np.flatnonzero(_local_peaks(s) & (s >= min_events))
    if not len(seeds):
        return np.zeros((0, 3))
    cx = (seeds % gw + 0.5) * cell_px
    cy = (seeds // gw + 0.5) * cell_px
    r2 = radius_px * radius_px
    for _ in range(2):  # seed → mean of nearby events → mean again around that
        d2 = (xf[:, None] - cx[None, :]) ** 2 + (yf[:, None] - cy[None, :]) ** 2  # (n_events, k)
        near = d2 <= r2
        n = near.sum(0)
        ok = n > 0
        cx = np.where(ok, (near * xf[:, None]).sum(0) / np.maximum(n, 1), cx)
        cy = np.where(ok, (near * yf[:, None]).sum(0) / np.maximum(n, 1), cy)
    keep = n >= min_events
    cx, cy, n = cx[keep], cy[keep], n[keep]
    # Seeds that converged within one target's reach are one cluster (a moving disc fires on its
    # leading and trailing edges, which can seed twice): merge them, weighted by their events.
    out: list[list[float]] = []
    for i in np.argsort(-n, kind="stable"):
        for o in out:
            if (cx[i] - o[0]) ** 2 + (cy[i] - o[1]) ** 2 <= r2:
                w = o[2] + n[i]
                o[0], o[1], o[2] = (
                    (o[0] * o[2] + cx[i] * n[i]) / w,
                    (o[1] * o[2] + cy[i] * n[i]) / w,
                    float(w),
                )
                break
        else:
            out.append([float(cx[i]), float(cy[i]), float(n[i])])
    out.sort(key=lambda o: (o[1], o[0]))
    return np.array(out, np.float64).reshape(-1, 3)
