"""Swarm science: event-cluster detection, Kalman tracking through unsensed gaps, ROI choice, handoffs."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.swarm import AgentBrain, BrainConfig, SectorScene, SensingConfig, SensingPolicy, Tracker, World
from nodes.swarm.detection import detect_clusters
from nodes.swarm.sensing import OFF, is_off
from nodes.swarm.simulate import make_camera, read_out


def _ring(cx: float, cy: float, r: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.uniform(0, 2 * np.pi, n)
    return np.clip(np.round(cx + r * np.cos(a)), 0, 63), np.clip(np.round(cy + r * np.sin(a)), 0, 63)


def test_detects_clusters_and_ignores_sparse_noise() -> None:
    rng = np.random.default_rng(0)
    x1, y1 = _ring(20.3, 30.6, 4, 60, rng)
    x2, y2 = _ring(50.0, 12.0, 4, 40, rng)
    nx, ny = rng.integers(0, 64, 40), rng.integers(0, 64, 40)  # ~1 Hz/pixel of noise over 10 ms
    dets = detect_clusters(np.r_[x1, x2, nx], np.r_[y1, y2, ny], 64, 64)
    assert len(dets) == 2
    order = np.argsort(dets[:, 0])
    assert dets[order[0], :2] == pytest.approx([20.3, 30.6], abs=0.8)
    assert dets[order[1], :2] == pytest.approx([50.0, 12.0], abs=0.8)
    assert len(detect_clusters(nx, ny, 64, 64)) == 0
    assert detect_clusters(np.array([], int), np.array([], int), 64, 64).shape == (0, 3)


def test_detection_on_the_synthetic_camera_finds_the_moving_target() -> None:
    w = World(seed=5, n_targets=1)
    scene = SectorScene(w, 64)
    xy = w.positions(0)[0]
    scene.origin = (float(xy[0]) - 32, float(xy[1]) - 32)
    cam = make_camera(scene, seed=1)
    cam.pixels.reset(scene.render(0), 0)
    errors = []
    for k in range(1, 11):
        ev = read_out(cam, None, 10_000)
        dets = detect_clusters(ev["x"], ev["y"], 64, 64)
        truth = w.positions(k * 10_000 - 5000)[0] - np.array(scene.origin)  # events' mean: mid-batch
        if len(dets):
            errors.append(np.hypot(*(dets[:, :2] - truth).T).min())
    assert len(errors) >= 8
    assert np.median(errors) < 1.0
    # the region of interest really limits what is read out; OFF reads nothing
    assert len(read_out(cam, (0, 0, 8, 8), 10_000)) < 20
    assert len(read_out(cam, OFF, 10_000)) == 0


def test_kalman_track_confirms_and_predicts_through_an_unsensed_gap() -> None:
    tr = Tracker()
    v = np.array([20.0, -10.0])
    p0 = np.array([50.0, 60.0])
    for k in range(20):
        t = k * 10_000
        tr.update(np.array([p0 + v * t * 1e-6]), t, sensed=(0, 0, 200, 200))
    (track,) = tr.tracks
    assert track.confirmed
    assert track.x[2:] == pytest.approx(v, abs=1.0)
    # 200 ms without sensing (outside the ROI): it coasts, neither missed nor lost
    for k in range(20, 40):
        tr.update(np.zeros((0, 2)), k * 10_000, sensed=None)
    (track,) = tr.tracks
    assert track.misses == 0
    assert np.hypot(*(track.pos - (p0 + v * 0.39))) < 0.6


def test_track_is_dropped_after_misses_where_it_was_looked_at() -> None:
    tr = Tracker(max_misses=3)
    for k in range(8):
        tr.update(np.array([[30.0 + k * 0.3, 30.0]]), k * 10_000, sensed=(0, 0, 64, 64))  # 30 px/s
    assert tr.tracks and tr.tracks[0].confirmed
    for k in range(8, 11):
        tr.update(np.zeros((0, 2)), k * 10_000, sensed=(0, 0, 64, 64))
    assert tr.tracks == [] and len(tr.dropped) == 1


def test_a_target_still_relative_to_the_camera_is_not_missed() -> None:
    tr = Tracker(max_misses=3)
    for k in range(8):
        tr.update(np.array([[30.0 + k * 0.3, 30.0]]), k * 10_000, sensed=(0, 0, 64, 64))
    for k in range(8, 20):  # the camera follows the target at its speed: an event camera sees nothing
        tr.update(np.zeros((0, 2)), k * 10_000, sensed=(0, 0, 64, 64), camera_v=tr.tracks[0].x[2:].copy())
    assert len(tr.tracks) == 1 and tr.tracks[0].misses == 0


def test_a_detection_cut_by_the_roi_border_never_confirms_a_track() -> None:
    tr = Tracker(edge_px=5)
    for k in range(4):
        tr.update(np.array([[61.0, 30.0]]), k * 10_000, sensed=(0, 0, 64, 64))  # 3 px from the right edge
    assert len(tr.tracks) == 1 and not tr.tracks[0].confirmed


def test_predictions_bounce_off_the_world_walls() -> None:
    tr = Tracker(bounds=(4, 4, 188, 188))
    tr.spawn(np.array([180.0, 100.0]), 0, v=np.array([40.0, 0.0]))
    tr.predict(500_000)  # 20 px to the wall at 188, then 0 px... back by 20 - 8 = 12
    assert tr.tracks[0].pos == pytest.approx([176.0, 100.0])
    assert tr.tracks[0].x[2] == pytest.approx(-40.0)


def test_sensing_policy_reads_a_small_box_around_the_track_that_needs_a_look() -> None:
    tr = Tracker()
    tr.spawn(np.array([130.0, 40.0]), 0)  # tentative: needs a second look
    origin = np.array([100.0, 10.0])
    pol = SensingPolicy(SensingConfig(mode="roi", fov_px=64, scan_every=20))
    assert pol.choose(tr.tracks, 5000, origin, 10_000) is None  # the first batch scans the full frame
    box = pol.choose(tr.tracks, 15_000, origin, 10_000)
    assert box is not None and not is_off(box)
    x0, y0, x1, y1 = box
    assert x0 <= 30 < x1 and y0 <= 30 < y1
    assert (x1 - x0) * (y1 - y0) < 64 * 64 / 6
    full = SensingPolicy(SensingConfig(mode="full"))
    assert all(full.choose(tr.tracks, t, origin, 10_000) is None for t in range(0, 100_000, 10_000))
    with pytest.raises(ValueError, match="mode"):
        SensingConfig(mode="some")


def test_sensing_policy_rests_when_every_track_was_seen_recently() -> None:
    tr = Tracker()
    t = tr.spawn(np.array([130.0, 40.0]), 0)
    t.confirmed, t.last_sensed_us, t.P = True, 0, np.eye(4) * 0.25
    pol = SensingPolicy(SensingConfig(mode="roi", fov_px=64, scan_every=100, revisit=4, strip_every=2))
    pol.k = 1  # past the opening full scan
    picks = [pol.choose(tr.tracks, 10_000 * k, np.array([100.0, 10.0]), 10_000) for k in range(1, 5)]
    # a strip every second idle batch, nothing in between, the track again once `revisit` batches passed
    assert is_off(picks[0]) and picks[1] is not None and not is_off(picks[1])
    assert picks[1][3] - picks[1][1] == 64 or picks[1][2] - picks[1][0] == 64
    assert not is_off(picks[3]) and picks[3][2] - picks[3][0] < 64


def test_a_target_leaving_a_sector_is_handed_off_and_acquired_by_the_next_agent() -> None:
    w = World(seed=0, n_targets=0)
    a0, a1 = AgentBrain(w, BrainConfig(agent=0)), AgentBrain(w, BrainConfig(agent=1))
    v = np.array([30.0, 0.0])
    origin0, origin1 = np.array([60.0, 20.0]), np.array([90.0, 20.0])  # a1's view overlaps the border
    notes0, notes1 = [], []
    for k in range(1, 80):
        t1 = k * 10_000
        xy = np.array([85.0, 50.0]) + v * (t1 - 5000) * 1e-6  # crosses x = 96 at t ≈ 0.37 s
        d0 = a0.step(
            np.array([[*(xy - origin0), 30.0]]) if xy[0] < 120 else np.zeros((0, 3)),
            t1 - 10_000,
            t1,
            origin0,
            None,
        )
        notes1 += a1.on_peer(d0.share)
        d1 = a1.step(
            np.array([[*(xy - origin1), 30.0]]) if xy[0] >= 95 else np.zeros((0, 3)),
            t1 - 10_000,
            t1,
            origin1,
            None,
        )
        notes0 += d0.notes
        notes1 += d1.notes
    assert a0.counts["handoffs_out"] == 1
    assert a1.counts["handoffs_in"] == 1 and a1.counts["handoffs_ok"] == 1
    assert any("a1 → a2" in n for n in notes0)
    assert len(a1.confirmed()) == 1
