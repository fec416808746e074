"""The run summary: merged views, and node metrics shown beside the edge table."""

from __future__ import annotations

import pytest

from runtime.stats import format_latency_us, merge_snapshots, print_summary, summary_rows


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


def _edge(p50_us: float, p99_us: float) -> dict[str, object]:
    lat = {"p50_us": p50_us, "p99_us": p99_us, "max_us": p99_us}
    return {"received": 10, "dropped": 0, "latency": lat, "sense_latency": {**lat, "p99_us": float("nan")}}


def test_summary_latencies_carry_their_own_unit(capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot({})
    snap["edges"] = {"a/out -> b/in": _edge(812.0, 39_204_229.0)}
    snap["paths"] = {
        "a/out → b/in": {
            "count": 10,
            "late": 1,
            "too_late": 0,
            "p50_us": 1250.0,
            "p99_us": 2e6,
            "max_us": 3e6,
        }
    }
    view = merge_snapshots({"brain": snap})
    print_summary(view, 2.0)
    out = capsys.readouterr().out
    assert "812 µs" in out and "39.2 s" in out and "1.25 ms" in out and "2.00 s" in out
    assert "39,204,229" not in out and "latency p50" in out and "p50 µs" not in out
    assert summary_rows(view, 2.0)[0]["p99_us"] == 39_204_229.0  # JSON and tests keep µs


def test_latency_units_switch_where_the_number_would_reach_1000() -> None:
    cases = {0.5: "0.50 µs", 12.34: "12.3 µs", 999.4: "999 µs", 999.6: "1.00 ms", 999_600: "1.00 s"}
    assert {us: format_latency_us(us) for us in cases} == cases
    assert format_latency_us(float("nan")) == format_latency_us(None) == "-"
