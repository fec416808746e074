"""Event representations as vectorised numpy: frames, voxel grids, time surfaces and event2vec tokens.

Every function takes an EVENT_DTYPE array sorted by t (µs) and never loops over events in Python;
accumulation goes through `np.bincount` / `np.maximum.at`, which run in C.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import DTypeLike

from .dtypes import EVENT_DTYPE

__all__ = [
    "event_frame",
    "event_frames",
    "voxel_grid",
    "time_surface",
    "time_surfaces",
    "TimeSurface",
    "event_tokens",
]

_NEVER = np.iinfo(np.int64).min


def _pixel_index(events: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flat index y·W + x (intp); raises ValueError for events outside the sensor."""
    if events.dtype != EVENT_DTYPE:
        raise ValueError(
            f"events have dtype {events.dtype}; expected EVENT_DTYPE (use nodes.sensors.events.as_events)"
        )
    x = events["x"].astype(np.intp)
    y = events["y"].astype(np.intp)
    if len(x) and (int(x.max()) >= width or int(y.max()) >= height):
        raise ValueError(
            f"events reach x={int(x.max())}, y={int(y.max())}: outside the {width}×{height} sensor"
        )
    y *= width
    y += x
    return y


def _count(idx: np.ndarray, size: int, dtype: DTypeLike = np.int32) -> np.ndarray:
    """Histogram of `idx` over `size` cells as `dtype` (ValueError if a count does not fit).

    When cells far outnumber events (short windows, large sensors), counting runs of the sorted
    indices into a lazily zeroed array beats `bincount`, whose cost grows with the output size.
    """
    if size > 8 * len(idx):
        out = np.zeros(size, dtype)
        if not len(idx):
            return out
        s = np.sort(idx)
        first = np.empty(len(s), bool)
        first[0] = True
        np.not_equal(s[1:], s[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=len(s))
        cells = s[starts]
    else:
        counts = np.bincount(idx, minlength=size)
        cells = None
    top = np.iinfo(dtype).max
    if len(counts) and int(counts.max()) > top:
        raise ValueError(
            f"a pixel has {int(counts.max())} events, more than {np.dtype(dtype).name} holds ({top})"
        )
    if cells is None:
        return counts.astype(dtype)
    out[cells] = counts
    return out


def event_frame(
    events: np.ndarray,
    width: int,
    height: int,
    mode: Literal["count", "polarity"] = "count",
    dtype: DTypeLike = np.int32,
) -> np.ndarray:
    """Accumulate events into an image.

    `count`: (2, H, W), events per pixel per polarity (channel 0 OFF, 1 ON), like tonic's ToImage.
    `polarity`: (H, W), ON minus OFF events per pixel. int32 unless `dtype` says otherwise (a
    narrower type halves memory traffic; a count that does not fit raises ValueError).
    """
    hw = width * height
    idx = _pixel_index(events, width, height)
    if mode == "count":
        idx += events["p"].astype(np.intp) * hw
        return _count(idx, 2 * hw, dtype).reshape(2, height, width)
    if mode == "polarity":
        w = events["p"].astype(np.float64) * 2.0 - 1.0
        return np.bincount(idx, weights=w, minlength=hw).astype(dtype).reshape(height, width)
    raise ValueError(f"event_frame: mode {mode!r} is not one of 'count', 'polarity'")


def event_frames(
    events: np.ndarray,
    width: int,
    height: int,
    window_us: int,
    t0_us: int | None = None,
    n: int | None = None,
    dtype: DTypeLike = np.int32,
) -> np.ndarray:
    """Count frames over consecutive windows: (n, 2, H, W) of `dtype` (int32).

    Window i covers [t0 + i·window_us, t0 + (i+1)·window_us); t0 defaults to the first event.
    `n` defaults to as many windows as needed to hold every event; events past `n` are dropped.
    """
    if window_us <= 0:
        raise ValueError(f"window_us must be > 0, got {window_us}")
    hw = width * height
    if not len(events):
        return np.zeros((n or 0, 2, height, width), dtype)
    t0 = int(events["t"][0]) if t0_us is None else int(t0_us)
    win = (events["t"] - t0) // window_us  # non-decreasing, as t is sorted
    n = int(win[-1]) + 1 if n is None else int(n)
    bounds = np.searchsorted(win, np.arange(n + 1), "left")  # events of window i: bounds[i]:bounds[i+1]
    idx = _pixel_index(events, width, height)
    idx += events["p"].astype(np.intp) * hw
    lo, hi = int(bounds[0]), int(bounds[-1])
    if n * 2 * hw > 8 * (hi - lo):  # sparse: one sort over all windows
        idx[lo:hi] += win[lo:hi].astype(np.intp) * (2 * hw)
        return _count(idx[lo:hi], n * 2 * hw, dtype).reshape(n, 2, height, width)
    # dense: one bincount per window (a loop over windows, not events) avoids an int64 temporary of
    # the whole stack
    out = np.zeros((n, 2 * hw), dtype)
    for i in range(n):
        a, b = int(bounds[i]), int(bounds[i + 1])
        if b > a:
            out[i] = _count(idx[a:b], 2 * hw, dtype)
    return out.reshape(n, 2, height, width)


def voxel_grid(events: np.ndarray, bins: int, width: int, height: int) -> np.ndarray:
    """Voxel grid bilinear in time (Zhu et al. 2019, as in E2VID and tonic's ToVoxelGrid): float32 (bins, H, W).

    Times map to τ = bins·(t − t_first)/(t_last − t_first); each event adds p·(1 − frac τ) to bin ⌊τ⌋
    and p·frac τ to bin ⌊τ⌋+1, with p = ±1, skipping bins ≥ `bins`. As in tonic, events at exactly
    t_last land on τ = bins and so add nothing. If all events share one time, each adds p to bin 0.
    Matches tonic to float rounding (bench/events.py checks it).
    """
    if bins <= 0:
        raise ValueError(f"voxel_grid: bins must be > 0, got {bins}")
    hw = width * height
    if not len(events):
        return np.zeros((bins, height, width), np.float32)
    idx = _pixel_index(events, width, height)
    t = events["t"]
    t_first = t[0]
    span = float(t[-1] - t_first)
    pol = events["p"].astype(np.float64) * 2.0 - 1.0
    if span == 0.0:
        grid = np.bincount(idx, weights=pol, minlength=hw)
        out = np.zeros((bins, height, width), np.float32)
        out[0] = grid.reshape(height, width)
        return out
    ts = t.astype(np.float64)
    ts -= t_first
    ts *= bins
    ts /= span  # τ in [0, bins], non-decreasing like t
    ti = ts.astype(np.intp)
    w_right = ts
    w_right -= ti  # frac τ, in place
    w_right *= pol  # p·frac τ
    w_left = pol
    w_left -= w_right  # p·(1 − frac τ)
    # t is sorted, so the events whose bins fall off the end (⌊τ⌋ ≥ bins, ⌊τ⌋+1 ≥ bins) are a tail.
    k_left = int(np.searchsorted(ti, bins, "left"))
    k_right = int(np.searchsorted(ti, bins - 1, "left"))
    ti *= hw
    ti += idx  # flat index of bin ⌊τ⌋
    # Two bincounts (the right-hand one shifted by a bin afterwards): faster than one bincount over
    # concatenated copies of every index and weight [M, 0.1–0.4 M events].
    grid = np.bincount(ti[:k_left], weights=w_left[:k_left], minlength=bins * hw)
    right = np.bincount(ti[:k_right], weights=w_right[:k_right], minlength=bins * hw)
    grid[hw:] += right[: (bins - 1) * hw]
    return grid.astype(np.float32).reshape(bins, height, width)


class TimeSurface:
    """Streaming time surface: remembers each pixel's last event time per polarity across batches.

    S[p, y, x] = exp(−(t_ref − t_last[p, y, x]) / τ), and 0 where a pixel never fired
    (Lagorce et al. 2016, HOTS; dense over the sensor as in tonic's ToTimesurface).
    """

    def __init__(self, width: int, height: int, tau_us: float) -> None:
        if tau_us <= 0:
            raise ValueError(f"tau_us must be > 0, got {tau_us}")
        self.width, self.height, self.tau_us = int(width), int(height), float(tau_us)
        self.last_us = np.full(2 * width * height, _NEVER, np.int64)
        self.t_latest: int | None = None

    def update(self, events: np.ndarray) -> None:
        """Fold a batch of events into the per-pixel last-event times."""
        if not len(events):
            return
        idx = _pixel_index(events, self.width, self.height)
        idx += events["p"].astype(np.intp) * (self.width * self.height)
        # max, not assignment: order-proof. The packed (13-byte) field is unaligned, which sends
        # ufunc.at down a slow generic path: give it a contiguous copy.
        np.maximum.at(self.last_us, idx, np.ascontiguousarray(events["t"]))
        t_last = int(events["t"][-1])
        self.t_latest = t_last if self.t_latest is None else max(self.t_latest, t_last)

    def surface(self, t_ref_us: int | None = None) -> np.ndarray:
        """float32 (2, H, W) at `t_ref_us` (default: the latest event seen)."""
        t_ref = self.t_latest if t_ref_us is None else int(t_ref_us)
        if t_ref is None:
            return np.zeros((2, self.height, self.width), np.float32)
        # Clamp ages at 200 τ: exp(−200) underflows float32 to exactly 0, so pixels that never
        # fired (and ancient ones) read 0 without a mask and without int64 overflow.
        age = np.maximum(self.last_us, t_ref - int(200 * self.tau_us))
        age -= t_ref
        out = age.astype(np.float32)
        out *= np.float32(1.0 / self.tau_us)
        np.exp(out, out=out)
        return out.reshape(2, self.height, self.width)


def time_surface(
    events: np.ndarray, width: int, height: int, tau_us: float, t_ref_us: int | None = None
) -> np.ndarray:
    """Time surface of one batch: float32 (2, H, W); see `TimeSurface` for the formula."""
    ts = TimeSurface(width, height, tau_us)
    ts.update(events)
    return ts.surface(t_ref_us)


def time_surfaces(
    events: np.ndarray, width: int, height: int, dt_us: int, tau_us: float, n: int | None = None
) -> np.ndarray:
    """Time surfaces every `dt_us` from the first event, with memory across windows: (n, 2, H, W).

    Surface i is taken at t_first + (i+1)·dt_us over all events before it, like tonic's
    ToTimesurface(dt, tau) (whose default drops the last incomplete window; pass `n` to match).
    """
    if not len(events):
        return np.zeros((n or 0, 2, height, width), np.float32)
    t = np.ascontiguousarray(events["t"])
    t0 = int(t[0])
    n = int((t[-1] - t0) // dt_us) + 1 if n is None else int(n)
    bounds = np.searchsorted(t, t0 + dt_us * np.arange(1, n + 1), "left")
    ts = TimeSurface(width, height, tau_us)
    out = np.empty((n, 2, height, width), np.float32)
    start = 0
    for i, end in enumerate(bounds):  # a loop over windows, not events
        ts.update(events[start:end])
        out[i] = ts.surface(t0 + (i + 1) * dt_us)
        start = int(end)
    return out


def event_tokens(
    events: np.ndarray,
    n: int,
    mode: Literal["sample", "window"] = "sample",
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Tokens for event2vec: float32 (n, 4) rows of (x, y, t_norm, p), in time order.

    `sample`: n events drawn at random without replacement (with replacement if there are fewer
    than n), as event2vec v1 feeds 255 random events in time order (SCIENCE.md 2.5). `window`: the
    n most recent events; fewer are padded at the front by repeating the first. x and y stay in
    pixels, p is 0/1, t_norm = (t − t_min)/(t_max − t_min) over the chosen events (0 if they share a
    time). No events gives zeros.
    """
    if n <= 0:
        raise ValueError(f"event_tokens: n must be > 0, got {n}")
    out = np.zeros((n, 4), np.float32)
    total = len(events)
    if total == 0:
        return out
    if mode == "sample":
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        idx = rng.choice(total, n, replace=False) if total >= n else rng.integers(0, total, n)
        idx.sort()
    elif mode == "window":
        idx = (
            np.arange(total - n, total)
            if total >= n
            else np.concatenate([np.zeros(n - total, np.intp), np.arange(total)])
        )
    else:
        raise ValueError(f"event_tokens: mode {mode!r} is not one of 'sample', 'window'")
    sel = events[idx]
    t = sel["t"]
    span = float(t[-1] - t[0])
    out[:, 0] = sel["x"]
    out[:, 1] = sel["y"]
    if span > 0:
        out[:, 2] = (t - t[0]) / span
    out[:, 3] = sel["p"]
    return out
