"""The swarm without the runtime: agents, cameras, detection, sharing and motion in one plain loop.

Used to measure action-to-sensing (events read out and tracking accuracy, ROI against full-frame
sensing, same world) and in tests; the runtime graph `examples/swarm/` runs the same science as nodes.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from nodes.sensors.events.dtypes import EVENT_DTYPE
from nodes.sensors.events.synthetic import SyntheticEventCamera

from .agent import AgentBrain, BrainConfig
from .detection import detect_clusters
from .sensing import SensingConfig, is_off
from .tracklog import TrackLog
from .world import SectorScene, World, sectors

__all__ = ["SwarmResult", "simulate_swarm", "roi_experiment", "make_camera", "read_out"]


@dataclass
class SwarmResult:
    """What a simulated run gives: events read out, tracking accuracy over targets in view (% of
    target-time within `tol_px` of a confirmed track of the agent viewing it; in view = the whole
    disc, radius + 1 px, inside the sensor), coverage metrics,
    handoff counts and the track log."""

    events: int
    accuracy_pct: float
    coverage: dict[str, float]
    handoffs: dict[str, int]
    log: TrackLog
    notes: list[tuple[int, str]] = field(default_factory=list)


def make_camera(
    scene: SectorScene, seed: int, step_us: int = 5000, shot_noise_hz: float = 1.0
) -> SyntheticEventCamera:
    """The synthetic DVS (v2e defaults, SCIENCE.md 2.4) filming one agent's view."""
    return SyntheticEventCamera(
        scene.width, scene.height, scene, seed, step_us=step_us, shot_noise_hz=shot_noise_hz
    )


def read_out(cam: SyntheticEventCamera, roi: tuple[int, int, int, int] | None, dt_us: int) -> np.ndarray:
    """Advance the camera by `dt_us` and return the events read out over `roi` (None: the whole
    sensor; an empty box: nothing, though the pixels still integrate light)."""
    if is_off(roi):
        cam.roi = None
        cam.step(dt_us)
        return np.zeros(0, EVENT_DTYPE)
    cam.roi = roi
    return cam.step(dt_us)


def simulate_swarm(
    world: World,
    *,
    n_agents: int = 4,
    duration_s: float = 5.0,
    sensing: str = "roi",
    fov_px: int = 64,
    seed: int = 0,
    step_us: int = 5000,
    move: bool = True,
    tol_px: float = 3.0,
    brain: BrainConfig | None = None,
    shot_noise_hz: float = 1.0,
) -> SwarmResult:
    """Run `n_agents` agents over `world` for `duration_s` of world time, deterministically.

    Each agent's batches end at its own times (its period can change); agents are processed in time
    order, and a share reaches the peers at once. Accuracy is weighted by batch length.
    """
    base = brain or BrainConfig()
    cfg0 = replace(
        base,
        n_agents=n_agents,
        fov_px=fov_px,
        max_speed_px_s=base.max_speed_px_s if move else 0.0,
        sensing=replace(base.sensing, mode=sensing, fov_px=fov_px, radius_px=world.radius_px),
    )
    brains = [AgentBrain(world, replace(cfg0, agent=i)) for i in range(n_agents)]
    secs = sectors(n_agents, world.width, world.height)
    scenes = [SectorScene(world, fov_px) for _ in range(n_agents)]
    pos = [np.array(s.center) for s in secs]
    cams = []
    for i, sc in enumerate(scenes):
        sc.origin = tuple(pos[i] - fov_px / 2.0)
        cams.append(make_camera(sc, seed * 1000 + i, step_us, shot_noise_hz))
    roi: list[tuple[int, int, int, int] | None] = [None] * n_agents
    vel = [np.zeros(2) for _ in range(n_agents)]
    log = TrackLog(world, n_agents, fov_px)
    end_us = int(duration_s * 1e6)
    heap = [(cfg0.period_us, i) for i in range(n_agents)]
    heapq.heapify(heap)
    events = 0
    hit_w = seen_w = 0.0
    notes: list[tuple[int, str]] = []
    while heap:
        t1, i = heapq.heappop(heap)
        cam, sc = cams[i], scenes[i]
        t0 = cam.t_us
        if move:
            s = secs[i]
            pos[i] = np.clip(pos[i] + vel[i] * (t1 - t0) * 1e-6, [s.x0, s.y0], [s.x1, s.y1])
        sc.origin = (float(pos[i][0] - fov_px / 2.0), float(pos[i][1] - fov_px / 2.0))
        ev = read_out(cam, roi[i], t1 - t0)
        events += len(ev)
        dets = detect_clusters(ev["x"], ev["y"], fov_px, fov_px)
        d = brains[i].step(dets, t0, t1, np.array(sc.origin), roi[i])
        for j, other in enumerate(brains):
            if j != i:
                for text in other.on_peer(d.share):
                    notes.append((t1, text))
        notes.extend((t1, text) for text in d.notes)
        log.observe_position(i, pos[i])
        log.observe_share(d.share)
        # Accuracy: targets inside this agent's view at t1, against its confirmed tracks.
        truth = world.positions(t1)
        local = truth - np.array(sc.origin)
        # In view: the whole disc, soft edge included (radius + 1 px), inside the sensor.
        r = world.radius_px + 1.0
        vis = np.all((local >= r) & (local <= fov_px - r), axis=1)
        if vis.any():
            est = np.array([t.pos for t in brains[i].confirmed()]).reshape(-1, 2)
            ok = (
                (np.hypot(*(truth[vis][:, None, :] - est[None, :, :]).transpose(2, 0, 1)) <= tol_px).any(1)
                if len(est)
                else np.zeros(int(vis.sum()), bool)
            )
            w = (t1 - t0) * 1e-6
            hit_w += w * float(ok.sum())
            seen_w += w * float(vis.sum())
        roi[i], vel[i] = d.roi, d.velocity
        if t1 + d.period_us <= end_us:
            heapq.heappush(heap, (t1 + d.period_us, i))
    handoffs = {k: sum(b.counts[k] for b in brains) for k in brains[0].counts}
    for t, text in notes:
        log.note(t, text)
    acc = 100.0 * hit_w / seen_w if seen_w else float("nan")
    return SwarmResult(events, acc, log.summary(tol_px), handoffs, log, notes)


def roi_experiment(
    world: World,
    *,
    duration_s: float = 5.0,
    seed: int = 0,
    n_agents: int = 4,
    sensing: SensingConfig | None = None,
    move: bool = False,
) -> dict[str, float]:
    """Action-to-sensing: the same world and swarm with ROI sensing and with full-frame sensing.

    The cameras stay parked by default, so that both runs look at exactly the same scenes and only
    the sensing differs (moving agents would follow different paths). Returns events read out by
    each, their ratio (full / ROI), the tracking accuracy of each and the points lost by sensing less.
    """
    brain = BrainConfig(sensing=sensing or SensingConfig())
    run = partial(
        simulate_swarm, world, n_agents=n_agents, duration_s=duration_s, seed=seed, brain=brain, move=move
    )
    roi, full = run(sensing="roi"), run(sensing="full")
    return {
        "events_roi": float(roi.events),
        "events_full": float(full.events),
        "reduction_x": full.events / max(1, roi.events),
        "accuracy_roi_pct": roi.accuracy_pct,
        "accuracy_full_pct": full.accuracy_pct,
        "accuracy_lost_points": full.accuracy_pct - roi.accuracy_pct,
        "coverage_roi_pct": roi.coverage["coverage_pct"],
        "coverage_full_pct": full.coverage["coverage_pct"],
    }
