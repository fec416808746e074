"""Flow tracking: one latency record per path `origin → node/input`, late and too-late against the deadline."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.tracking import FlowTracker

MS = 1_000_000  # ns


def test_each_origin_and_input_is_its_own_path() -> None:
    ft = FlowTracker(deadline_ms=None)
    ft.observe("imu/sample", "act", "cmd", 1 * MS)
    ft.observe("cam/frame", "act", "cmd", 2 * MS)
    ft.observe("imu/sample", "act", "cmd", 3 * MS)
    ft.observe("imu/sample", "log", "x", 4 * MS)
    snap = ft.snapshot()
    assert list(snap) == ["imu/sample → act/cmd", "cam/frame → act/cmd", "imu/sample → log/x"]
    assert [p["count"] for p in snap.values()] == [2, 1, 1]


def test_late_is_strictly_over_the_deadline_and_too_late_defaults_to_five_times_it() -> None:
    ft = FlowTracker(deadline_ms=10)
    assert (ft.late_ns, ft.too_late_ns) == (10 * MS, 50 * MS)
    for ns in (10 * MS, 10 * MS + 1, 50 * MS, 50 * MS + 1, 80 * MS):
        ft.observe("cam/frame", "act", "cmd", ns)
    p = ft.snapshot()["cam/frame → act/cmd"]
    assert (p["count"], p["late"], p["too_late"], p["deadline_ms"]) == (5, 4, 2, 10.0)


def test_an_explicit_too_late_threshold_replaces_the_default() -> None:
    ft = FlowTracker(deadline_ms=0.5, too_late_ms=2)
    assert (ft.late_ns, ft.too_late_ns) == (500_000, 2 * MS)
    for ns in (400_000, 600_000, 2 * MS + 1):
        ft.observe("imu/sample", "act", "cmd", ns)
    p = ft.snapshot()["imu/sample → act/cmd"]
    assert (p["late"], p["too_late"], p["deadline_ms"]) == (2, 1, 0.5)


def test_without_a_deadline_nothing_is_late() -> None:
    ft = FlowTracker(deadline_ms=None)
    ft.observe("imu/sample", "act", "cmd", 10**12)
    p = ft.snapshot()["imu/sample → act/cmd"]
    assert (p["late"], p["too_late"], p["deadline_ms"]) == (0, 0, None)


def test_path_latency_percentiles_match_numpy() -> None:
    data = np.random.default_rng(7).integers(100_000, 40 * MS, size=1000)
    ft = FlowTracker(deadline_ms=5)
    for ns in data:
        ft.observe("cam/frame", "act", "cmd", int(ns))
    p = ft.snapshot()["cam/frame → act/cmd"]
    p50, p99 = np.percentile(data, [50, 99]) / 1000
    assert (p["p50_us"], p["p99_us"]) == pytest.approx((p50, p99), rel=1e-12)
    assert p["max_us"] == data.max() / 1000
    assert p["late"] == int((data > 5 * MS).sum()) and p["too_late"] == int((data > 25 * MS).sum())


def test_a_tracker_that_saw_nothing_has_an_empty_snapshot() -> None:
    assert FlowTracker(deadline_ms=10).snapshot() == {}
