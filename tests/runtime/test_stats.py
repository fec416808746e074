"""The run summary: merged views, and node metrics shown beside the edge table."""

from __future__ import annotations

import pytest

from runtime.stats import merge_snapshots, print_summary


def _snapshot(counters: dict[str, float]) -> dict[str, object]:
    return {
        "edges": {},
        "outputs": {},
        "paths": {},
        "nodes": {"score": {"state": "finished", "failures": 0, "restarts": 0, "counters": counters}},
    }


def test_merge_tags_each_node_with_its_agent() -> None:
    view = merge_snapshots({"brain": _snapshot({"scored": 3})})
    assert view["nodes"]["score"]["agent"] == "brain"
    assert view["agents"]["brain"]["nodes"]["score"]["counters"] == {"scored": 3}


def test_summary_prints_node_metrics_with_readable_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    view = merge_snapshots(
        {"brain": _snapshot({"scored": 1234.0, "accuracy": 0.78125, "energy_nj_per_inference": 393.21})}
    )
    print_summary(view, 4.0)
    out = capsys.readouterr().out
    assert "node metrics" in out
    assert "scored 1,234" in out  # a whole count, not 1234.0
    assert "accuracy 0.781" in out
    assert "energy_nj_per_inference 393" in out


def test_summary_without_metrics_prints_no_metrics_table(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(merge_snapshots({"brain": _snapshot({})}), 1.0)
    assert "node metrics" not in capsys.readouterr().out
