"""Representations against plain per-event reference loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nodes.sensors.events import (
    EVENT_DTYPE,
    TimeSurface,
    event_frame,
    event_frames,
    event_tokens,
    make_events,
    time_surface,
    time_surfaces,
    voxel_grid,
)

W, H = 13, 7


def _events(n: int = 400, seed: int = 0, t_max: int = 50_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(
        np.sort(rng.integers(0, t_max, n)),
        rng.integers(0, W, n),
        rng.integers(0, H, n),
        rng.integers(0, 2, n),
    )


def test_event_frame_count_and_polarity() -> None:
    ev = _events()
    ref = np.zeros((2, H, W), np.int64)
    for e in ev:
        ref[e["p"], e["y"], e["x"]] += 1
    assert np.array_equal(event_frame(ev, W, H), ref)
    assert event_frame(ev, W, H).dtype == np.int32
    assert np.array_equal(event_frame(ev, W, H, "polarity"), ref[1] - ref[0])
    # the sparse path (far more cells than events) gives the same result
    assert np.array_equal(event_frame(ev[:3], 300, 200)[:, :H, :W], event_frame(ev[:3], W, H))


def test_event_frames_windows() -> None:
    ev = _events()
    frames = event_frames(ev, W, H, 10_000)
    t0 = ev["t"][0]
    ref = np.zeros((frames.shape[0], 2, H, W), np.int64)
    for e in ev:
        ref[(e["t"] - t0) // 10_000, e["p"], e["y"], e["x"]] += 1
    assert np.array_equal(frames, ref)
    assert frames.sum() == len(ev)


def test_voxel_grid_matches_reference_loop() -> None:
    ev = _events()
    bins = 5
    ref = np.zeros((bins, H, W))
    t0, t1 = float(ev["t"][0]), float(ev["t"][-1])
    for e in ev:
        tau = bins * (float(e["t"]) - t0) / (t1 - t0)
        i = int(math.floor(tau))
        pol = 1.0 if e["p"] else -1.0
        if i < bins:
            ref[i, e["y"], e["x"]] += pol * (1 - (tau - i))
        if i + 1 < bins:
            ref[i + 1, e["y"], e["x"]] += pol * (tau - i)
    got = voxel_grid(ev, bins, W, H)
    assert got.shape == (bins, H, W) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)
    same_t = ev.copy()
    same_t["t"] = 7
    assert voxel_grid(same_t, 3, W, H)[0].sum() == pytest.approx((2 * same_t["p"].astype(int) - 1).sum())
    assert not voxel_grid(np.zeros(0, EVENT_DTYPE), 3, W, H).any()


def test_time_surface_matches_reference_and_streams() -> None:
    ev = _events()
    tau = 5_000.0
    last = np.full((2, H, W), -1)
    for e in ev:
        last[e["p"], e["y"], e["x"]] = e["t"]
    t_ref = int(ev["t"][-1]) + 100
    ref = np.where(last >= 0, np.exp(-(t_ref - last) / tau), 0.0)
    np.testing.assert_allclose(time_surface(ev, W, H, tau, t_ref), ref, rtol=1e-5, atol=1e-30)
    ts = TimeSurface(W, H, tau)  # the same, fed in three batches
    for part in np.array_split(ev, 3):
        ts.update(part)
    np.testing.assert_allclose(ts.surface(t_ref), ref, rtol=1e-5, atol=1e-30)
    assert time_surface(ev, W, H, tau).max() == pytest.approx(1.0)
    stack = time_surfaces(ev, W, H, 10_000, tau)
    np.testing.assert_allclose(
        stack[-1], time_surface(ev, W, H, tau, int(ev["t"][0]) + 10_000 * len(stack)), rtol=1e-5
    )


def test_event_tokens() -> None:
    ev = _events(1000)
    tok = event_tokens(ev, 64, "sample", seed=3)
    assert tok.shape == (64, 4) and tok.dtype == np.float32
    assert np.array_equal(tok, event_tokens(ev, 64, "sample", seed=3))
    assert bool(np.all(np.diff(tok[:, 2]) >= 0)) and tok[0, 2] == 0 and tok[-1, 2] == 1
    rows = {tuple(r) for r in np.stack([ev["x"], ev["y"], ev["p"]], 1).tolist()}
    assert all((r[0], r[1], r[3]) in rows for r in tok.tolist())
    win = event_tokens(ev, 10, "window")
    assert np.array_equal(win[:, 0], ev["x"][-10:]) and np.array_equal(win[:, 3], ev["p"][-10:])
    few = event_tokens(ev[:3], 8, "window")
    assert np.array_equal(few[5:, 0], ev["x"][:3]) and np.all(few[:5, 0] == ev["x"][0])
    assert not event_tokens(ev[:0], 4).any()
    with pytest.raises(ValueError, match="mode"):
        event_tokens(ev, 4, "bogus")  # type: ignore[arg-type]


def test_out_of_sensor_events_are_rejected() -> None:
    ev = _events()
    with pytest.raises(ValueError, match="outside the 5×7 sensor"):
        event_frame(ev, 5, H)
