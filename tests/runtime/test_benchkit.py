"""Benchmark results follow the project's convention: {name, value, unit, baseline, ratio, target, met}."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.benchkit import Case, write_json


def test_ratio_and_targets(tmp_path: Path) -> None:
    ok = Case("p50", 120.0, "us", baseline=100.0, target="ratio <= 1.2")
    missed = Case("p99", 200.0, "us", baseline=100.0, target="ratio <= 1.5")
    plain = Case("rss", 50.0, "MiB")
    value_target = Case("stop", 0.4, "s", target="value <= 1.0")
    assert ok.ratio == pytest.approx(1.2) and ok.met is True
    assert missed.ratio == pytest.approx(2.0) and missed.met is False
    assert plain.ratio is None and plain.met is True and plain.target is None
    assert value_target.met is True
    write_json([ok, missed, plain], tmp_path / "out.json")
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [set(r) for r in rows] == [{"name", "value", "unit", "baseline", "ratio", "target", "met"}] * 3
    assert rows[1]["met"] is False


def test_a_target_without_a_baseline_is_missed_not_guessed() -> None:
    assert Case("x", 1.0, "s", target="ratio <= 2").met is False


def test_malformed_target_is_refused() -> None:
    with pytest.raises(ValueError, match="ratio <= 1.2"):
        Case("x", 1.0, "s", baseline=1.0, target="at most 1.2x")
