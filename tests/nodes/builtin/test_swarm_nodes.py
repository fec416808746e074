"""Swarm nodes without sockets: camera control inputs, detector, controller, fail-safe mover, and the
runtime-free simulation (deterministic, detects, shares, and ROI sensing reads out less)."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.builtin.swarm import SwarmCamera, SwarmController, SwarmDetector, SwarmMover
from nodes.swarm import World, roi_experiment, simulate_swarm
from runtime.clock import SimClock
from runtime.testing import NodeHarness


async def test_mover_integrates_commands_and_holds_position_when_stale() -> None:
    clock = SimClock()
    async with NodeHarness(SwarmMover, {"agent": 0, "max_speed_px_s": 40}, clock=clock) as h:
        assert h.node.in_safe_state  # actuators start safe
        await h.send("cmd", [10.0, 0.0])
        await clock.sleep(0.5)
        await h.send("cmd", [100.0, 0.0])  # clipped to 40 px/s
        await clock.sleep(0.25)
        await h.node.on_timeout("cmd")  # the runtime calls this when `timeout_ms` passes
        positions = [p["xy"] for p in h.payloads("position")]
        assert positions[0] == pytest.approx([48.0, 48.0])  # home: its sector's centre
        assert positions[1] == pytest.approx([53.0, 48.0])
        assert positions[2] == pytest.approx([63.0, 48.0])
        assert h.payloads("position")[-1]["safe"] is True
        await clock.sleep(1.0)
        await h.send("tick", 0)  # held: no motion while safe
        assert h.payloads("position")[-1]["xy"] == pytest.approx([63.0, 48.0])
        assert h.ctx.counters["safe_entries"] == 1 and h.ctx.counters["resumes"] == 1
        assert [s["safe"] for s in h.payloads("state")] == [False, True]


async def test_camera_films_the_world_and_obeys_roi_and_position() -> None:
    clock = SimClock()
    async with NodeHarness(SwarmCamera, {"agent": 0, "seed": 3, "duration_s": 0.05}, clock=clock) as h:
        await h.send("roi", [0, 0, 0, 0])  # an empty box: read nothing out
        await h.send("position", {"xy": [60.0, 50.0]})
        await h.run_source(timeout_s=30)
        batches = h.payloads("events")
        assert len(batches) == 5 and batches[-1]["final"] and not batches[0]["final"]
        assert all(len(b["events"]) == 0 for b in batches)
        assert batches[0]["origin"] == [28.0, 18.0] and batches[0]["roi"] == [0, 0, 0, 0]
        assert batches[1]["t0_us"] == batches[0]["t1_us"] == 10_000
    async with NodeHarness(SwarmCamera, {"agent": 0, "seed": 3, "duration_s": 0.05}, clock=SimClock()) as h:
        await h.run_source(timeout_s=30)
        assert sum(len(b["events"]) for b in h.payloads("events")) > 0
        await h.send("roi", [70, 0, 90, 10])  # outside the sensor: refused, counted
        assert h.ctx.counters["bad_control"] == 1


async def test_detector_and_controller_turn_events_into_roi_commands_and_shares() -> None:
    ev = np.zeros(60, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    a = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    ev["x"], ev["y"] = np.round(20 + 4 * np.cos(a)), np.round(30 + 4 * np.sin(a))
    batch = {
        "events": ev,
        "width": 64,
        "height": 64,
        "t0_us": 0,
        "t1_us": 10_000,
        "origin": [16.0, 16.0],
        "roi": None,
        "final": False,
    }
    async with NodeHarness(SwarmDetector) as det:
        await det.send("events", batch)
        (d,) = det.payloads("detections")
        assert d["dets"].shape == (1, 3) and d["dets"][0, :2] == pytest.approx([20.0, 30.0], abs=0.6)
    async with NodeHarness(SwarmController, {"agent": 0, "seed": 0}, clock=SimClock()) as ctl:
        for k in range(3):
            await ctl.send("dets", {**d, "t0_us": k * 10_000, "t1_us": (k + 1) * 10_000, "final": k == 2})
        shares = ctl.payloads("share")
        assert len(shares) == 3 and shares[-1]["final"] and ctl.node.done.is_set()
        assert shares[-1]["tracks"].shape == (1, 6)  # one confirmed track, in world px
        assert shares[-1]["tracks"][0, 1:3] == pytest.approx([36.0, 46.0], abs=1.0)
        assert len(ctl.payloads("cmd")) == 3 and len(ctl.payloads("roi")) == 3
        # a peer hands a target over: counted
        await ctl.send(
            "from_a2",
            {
                "agent": 1,
                "t_us": 30_000,
                "tracks": np.zeros((0, 6)),
                "handoffs": np.array([[7.0, 0.0, 60.0, 60.0, -10.0, 0.0]]),
            },
        )
        assert ctl.node.brain.counts["handoffs_in"] == 1


def test_simulated_swarm_is_deterministic_and_tracks() -> None:
    w = World(seed=7)
    a = simulate_swarm(w, duration_s=1.5)
    b = simulate_swarm(w, duration_s=1.5)
    assert a.log.to_json() == b.log.to_json() and a.events == b.events
    assert a.accuracy_pct > 70
    assert a.coverage["coverage_pct"] > a.coverage["static_coverage_pct"]  # moving keeps more in view


def test_roi_sensing_reads_out_far_less_and_keeps_most_accuracy() -> None:
    r = roi_experiment(World(seed=1), duration_s=1.5)
    assert r["events_full"] > 2.5 * r["events_roi"]  # the benchmark measures the real figure (≥ 5×)
    assert r["accuracy_lost_points"] < 15
