"""The shared swarm world: deterministic closed-form targets, sectors, views and coverage."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.swarm import SectorScene, World, coverage, sector_of, sectors


def test_world_is_a_pure_function_of_seed_and_time() -> None:
    a, b, c = World(seed=3), World(seed=3), World(seed=4)
    ts = np.arange(0, 5_000_000, 250_000)
    assert np.array_equal(a.positions(ts), b.positions(ts))
    assert not np.allclose(a.positions(ts), c.positions(ts))
    # any time, any order: no stepping state
    assert np.array_equal(a.positions(3_000_000), a.positions(ts)[12])


def test_targets_stay_inside_and_move_continuously_at_their_velocity() -> None:
    w = World(seed=1)
    ts = np.arange(0, 20_000_000, 1000)
    pos, vel = w.state(ts)
    r = w.radius_px
    assert (
        pos.min() >= r - 1e-9
        and pos[..., 0].max() <= w.width - r + 1e-9
        and pos[..., 1].max() <= w.height - r + 1e-9
    )
    step = np.abs(np.diff(pos, axis=0))
    speed_max = np.abs(vel).max()
    assert step.max() <= speed_max * 1e-3 + 1e-9  # no jumps: bounces fold, they do not teleport
    # velocity is the derivative of position (away from the instants of a bounce)
    fd = np.diff(pos, axis=0) / 1e-3
    same_dir = np.sign(vel[:-1]) == np.sign(vel[1:])
    assert np.allclose(fd[same_dir], vel[:-1][same_dir], atol=0.5)


def test_sectors_tile_the_world_and_name_owners() -> None:
    secs = sectors(4, 192, 192)
    assert [(s.x0, s.y0, s.x1, s.y1) for s in secs] == [
        (0, 0, 96, 96),
        (96, 0, 192, 96),
        (0, 96, 96, 192),
        (96, 96, 192, 192),
    ]
    pts = np.array([[10, 10], [150, 20], [20, 150], [191, 191], [-1, 5]])
    assert sector_of(secs, pts).tolist() == [0, 1, 2, 3, -1]
    three = sectors(3, 90, 60)
    assert sum((s.x1 - s.x0) * (s.y1 - s.y0) for s in three) == pytest.approx(90 * 60)
    with pytest.raises(ValueError, match="n_agents"):
        sectors(0, 10, 10)


def test_coverage_counts_targets_inside_any_view() -> None:
    targets = np.array([[[10.0, 10.0], [100.0, 100.0], [40.0, 10.0]]])  # (T=1, n=3, 2)
    cams = np.array([[[20.0, 20.0]]])  # one 32-px view centred at (20, 20): covers x, y in [4, 36]
    seen = coverage(targets, cams, 32, radius_px=0.0)
    assert seen.tolist() == [[True, False, False]]
    assert coverage(targets, cams, 32, radius_px=8.0).tolist() == [[False, False, False]]


def test_sector_scene_draws_targets_where_the_view_sees_them() -> None:
    w = World(seed=2, n_targets=1)
    scene = SectorScene(w, 48)
    xy = w.positions(0)[0]
    scene.origin = (float(xy[0]) - 20.0, float(xy[1]) - 10.0)
    img = scene.render(0)
    assert img.shape == (48, 48) and img.dtype == np.float32
    assert img[10, 20] == pytest.approx(w.intensity, abs=0.02)
    assert img[40, 2] == pytest.approx(w.background)
    scene.origin = (float(xy[0]) + 100.0, float(xy[1]))  # looking elsewhere: nothing to see
    assert np.all(scene.render(0) == np.float32(w.background))
    many = scene.render_many(np.array([0, 1000, 2000]))
    assert many.shape == (3, 48, 48)


def test_world_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="too small"):
        World(width=10, height=10, radius_px=4)
