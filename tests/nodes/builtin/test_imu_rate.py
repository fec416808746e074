"""Action-to-sensing for a wearable: the rate controller, the IMU's rate input, the feedback loop in a graph."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.builtin.imu import ImuRateController, SyntheticImuSource
from nodes.sensors.imu import RateConfig, RateController, SyntheticImu, adaptive_rate_experiment
from runtime.errors import GraphError
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.testing import NodeHarness


def test_controller_follows_motion_with_hysteresis() -> None:
    imu = SyntheticImu([("walking", 10), ("standing", 10), ("running", 10)], subject_seed=2, rate_hz=50)
    x, _ = imu.read(1500)
    ctl = RateController(RateConfig(high_hz=50, low_hz=10))
    rates = []
    for i, row in enumerate(x):
        ctl.observe(i / 50, row)
        rates.append(ctl.rate_hz)
    rates_a = np.array(rates)
    assert (rates_a[100:500] == 50).all()  # walking: fast
    assert (rates_a[650:1000] == 10).all()  # standing, once the window has only standing in it
    assert (rates_a[1100:] == 50).all()  # running
    assert ctl.switches == 2  # no flapping


def test_rate_config_is_checked() -> None:
    with pytest.raises(ValueError, match="low_hz"):
        RateConfig(high_hz=10, low_hz=20)


async def test_synthetic_imu_emits_at_the_requested_rate() -> None:
    params = {"activities": [["walking", 4.0]], "rate_hz": 50, "speed": 0}
    async with NodeHarness(SyntheticImuSource, params) as h:
        await h.send("rate_hz", 10.0)
        await h.send("rate_hz", "fast")  # a bad control message is counted and ignored
        await h.run_source(timeout_s=60)
        assert h.ctx.counters["bad_control"] == 1
    assert len(h.payloads("sample")) == 40  # 4 s at 10 Hz instead of 200 samples at 50 Hz


def test_adaptive_rate_keeps_accuracy_with_fewer_samples() -> None:
    r = adaptive_rate_experiment(seconds=300, seed=1)
    assert r["reduction_x"] > 1.2
    assert r["accuracy_lost_points"] <= 5.0
    assert r["accuracy_full_pct"] > 60.0  # the classifier itself works


async def test_feedback_loop_in_a_graph_is_deterministic_in_one_process() -> None:
    text = """
name: imu_rate_one
clock: sim
nodes:
  - id: imu
    uses: imu.synthetic
    params: {activities: [[walking, 10], [standing, 10], [running, 5], [sitting, 15]], subject_seed: 3}
    inputs: {rate_hz: {from: rate/rate_hz, policy: latest}}
  - id: rate
    uses: imu.rate_controller
    inputs: {sample: {from: imu/sample, policy: backpressure}}
"""
    runs = []
    for _ in range(2):
        result = await Launcher(load_graph("imu_rate.yaml", text=text), env={"EDGELOOP_LOG": "WARNING"}).run(
            None
        )
        assert result.exit_code == 0, result.failures
        nodes = result.view["nodes"]
        runs.append((nodes["imu"]["counters"]["samples"], nodes["rate"]["counters"]["switches"]))
    assert runs[0] == runs[1]
    samples, switches = runs[0]
    assert switches == 3  # still, moving, still
    assert samples < 0.75 * 40 * 50  # 40 s at 50 Hz unless the wearer keeps still


async def test_controller_params_are_checked_at_setup() -> None:
    with pytest.raises(GraphError, match="low_hz"):
        async with NodeHarness(ImuRateController, {"high_hz": 5, "low_hz": 10}):
            pass
