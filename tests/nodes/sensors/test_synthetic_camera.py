"""The DVS pixel model, the synthetic camera (seeds, ROI, scenes) and the gesture dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nodes.sensors.events import (
    EVENT_DTYPE,
    GESTURE_CLASSES,
    DvsParams,
    DvsPixels,
    SyntheticEventCamera,
    Target,
    Targets,
    make_gesture_dataset,
)


def _pixels(**kw: Any) -> DvsPixels:
    params = DvsParams(**{"sigma": 0.0, "refractory_us": 0, "leak_hz": 0.0, "shot_noise_hz": 0.0, **kw})
    return DvsPixels(4, 3, params, np.random.default_rng(0))


def test_threshold_crossings_and_interpolated_times() -> None:
    px = _pixels()
    px.reset(np.full((3, 4), 0.2, np.float32), 0)
    ev = px.step(np.full((3, 4), 0.2 * np.exp(0.5), np.float32), 1000)  # +0.5 ln = 2 crossings of 0.2
    assert len(ev) == 24 and bool(ev["p"].all())
    assert sorted(set(ev["t"].tolist())) == [400, 800]  # crossings at 0.2/0.5 and 0.4/0.5 of the step
    assert len(px.step(np.full((3, 4), 0.2 * np.exp(0.35), np.float32), 2000)) == 0  # inside the hysteresis
    off = px.step(np.full((3, 4), 0.2 * np.exp(-0.05), np.float32), 3000)
    assert len(off) == 24 and not off["p"].any()


def test_refractory_period_suppresses_close_events() -> None:
    px = _pixels(refractory_us=500)
    px.reset(np.full((3, 4), 0.2, np.float32), 0)
    ev = px.step(np.full((3, 4), 0.2 * np.exp(0.5), np.float32), 1000)
    assert len(ev) == 12  # the second crossing, 400 µs later, falls in the dead time


def test_shot_noise_rate_and_leak() -> None:
    px = DvsPixels(50, 40, DvsParams(sigma=0.0, leak_hz=0.0, shot_noise_hz=5.0), np.random.default_rng(1))
    px.reset(np.full((40, 50), 0.5, np.float32), 0)
    ev = px.step(np.full((40, 50), 0.5, np.float32), 1_000_000)
    assert 0.8 * 10_000 < len(ev) < 1.2 * 10_000  # 5 Hz × 2,000 pixels × 1 s
    leak = DvsPixels(50, 40, DvsParams(sigma=0.0, leak_hz=1.0, shot_noise_hz=0.0), np.random.default_rng(1))
    leak.reset(np.full((40, 50), 0.5, np.float32), 0)
    frames = np.full((40, 40, 50), 0.5, np.float32)
    ev = leak.step_many(frames, np.arange(1, 41) * 50_000)  # 2 s
    assert len(ev) == pytest.approx(2 * 2000, rel=0.05) and bool(ev["p"].all())  # leak events are ON


@pytest.mark.parametrize("scene", ["gestures", "bars", "shapes"])
def test_camera_is_deterministic_by_seed(scene: str) -> None:
    a = SyntheticEventCamera(48, 32, scene, seed=5).generate(100_000)
    b = SyntheticEventCamera(48, 32, scene, seed=5).generate(100_000)
    c = SyntheticEventCamera(48, 32, scene, seed=6).generate(100_000)
    assert a.dtype == EVENT_DTYPE and len(a) > 100
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert bool(np.all(np.diff(a["t"]) >= 0)) and a["t"].min() > 0 and a["t"].max() <= 100_000
    assert a["x"].max() < 48 and a["y"].max() < 32


def test_step_equals_generate() -> None:
    whole = SyntheticEventCamera(32, 32, "bars", seed=1, shot_noise_hz=0).generate(50_000)
    cam = SyntheticEventCamera(32, 32, "bars", seed=1, shot_noise_hz=0)
    parts = np.concatenate([cam.step(10_000) for _ in range(5)])
    assert np.array_equal(whole, parts)


def test_roi_keeps_only_events_inside() -> None:
    kw: dict[str, Any] = {"shot_noise_hz": 0.0, "seed": 2}
    full = SyntheticEventCamera(64, 48, "shapes", **kw).generate(200_000)
    cam = SyntheticEventCamera(64, 48, "shapes", roi=(10, 5, 40, 30), **kw)
    roi = cam.generate(200_000)
    inside = full[(full["x"] >= 10) & (full["x"] < 40) & (full["y"] >= 5) & (full["y"] < 30)]
    assert np.array_equal(roi, inside) and 0 < len(roi) < len(full)
    cam.roi = None
    assert len(cam.step(100_000)) > 0
    with pytest.raises(ValueError, match="empty"):
        cam.roi = (70, 0, 80, 10)


def test_targets_scene_is_steerable() -> None:
    scene = Targets(32, 32, [Target(8, 8, radius=3, vx=0, vy=0)], move=False)
    cam = SyntheticEventCamera(32, 32, scene, seed=0, shot_noise_hz=0, leak_hz=0)
    assert len(cam.step(10_000)) == 0  # nothing moves, nothing fires
    scene.targets[0].x = 24  # a controller moves the target
    ev = cam.step(10_000)
    assert len(ev) > 20 and bool(np.all(np.abs(ev["y"].astype(int) - 8) <= 5))
    lab = SyntheticEventCamera(32, 32, lambda t: np.full((32, 32), 0.5), seed=0)
    assert lab.label == -1


def test_gesture_dataset() -> None:
    xs, labels, names = make_gesture_dataset(3, 32, 32, 200_000, seed=4)
    assert names == list(GESTURE_CLASSES) and len(names) >= 4
    assert len(xs) == 3 * len(names) and labels.tolist() == list(range(len(names))) * 3
    for ev in xs:
        assert ev.dtype == EVENT_DTYPE and len(ev) > 50
        assert ev["t"].min() > 0 and ev["t"].max() <= 200_000 and bool(np.all(np.diff(ev["t"]) >= 0))
        assert ev["x"].max() < 32 and ev["y"].max() < 32
    again, _, _ = make_gesture_dataset(3, 32, 32, 200_000, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(xs, again, strict=True))
    sub, lab, nm = make_gesture_dataset(2, 32, 32, 100_000, seed=0, classes=["wave", "push"])
    assert nm == ["wave", "push"] and lab.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="unknown gesture"):
        make_gesture_dataset(1, classes=["jump"])


def test_gesture_stream_labels() -> None:
    cam = SyntheticEventCamera(32, 32, "gestures", seed=3, classes=["swipe_left", "circle_cw"])
    seen = set()
    for _ in range(6):
        cam.step(500_000)
        seen.add(cam.label)
    assert seen <= {0, 1} and cam.class_names == ["swipe_left", "circle_cw"]
