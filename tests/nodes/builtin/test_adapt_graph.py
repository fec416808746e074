"""The example graph end to end (examples/har_wearable/graph.yaml): live accuracy, then the PNG and cost table."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from runtime.graph import load_graph
from runtime.launcher import Launcher

GRAPH = Path(__file__).resolve().parents[3] / "examples" / "har_wearable" / "graph.yaml"
TINY = "{subjects: 2, minutes: 0.5, epochs: 1, conv: [4, 8], augment_copies: 0}"


@pytest.mark.timeout(180)
async def test_har_wearable_graph_runs_and_reports(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    sets = [
        "imu.duration_s=30",
        f"report.png={out}/accuracy.png",
        f"report.table={out}/costs.md",
        f"report.json_path={out}/summary.json",
        "report.log_every=5",
        "report.redraw_every=3",
    ]
    for node in ("none", "dfa", "bp"):
        sets += [
            f"{node}.pretrain_options={TINY}",
            f"{node}.cache_dir={tmp_path}/cache",
            f"{node}.log_every=5",
        ]
    graph = load_graph(GRAPH, sets)
    launcher = Launcher(graph, overrides=sets, env={"EDGELOOP_LOG": "INFO"}, startup_timeout_s=120)
    result = await asyncio.wait_for(launcher.run(None), timeout=170)
    assert result.exit_code == 0, result.failures
    err = capfd.readouterr().err
    assert re.search(r"window \d+ accuracy \(last 20\): .*dfa \d+ %", err)  # shown live by the report
    assert "DFA vs BP" in err  # the cost table, logged at the end
    # redrawn while the run goes on (the last redraw may still be under way at stop)
    png = out / "accuracy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    windows = (30 * 50 - 128) // 64 + 1
    assert {k: len(v) for k, v in summary["hits"].items()} == {"none": windows, "dfa": windows, "bp": windows}
    assert summary["summaries"]["dfa"]["updates"] == windows and summary["summaries"]["none"]["updates"] == 0
    assert "energy per update, DFA/BP" in (out / "costs.md").read_text()
    nodes = result.view["nodes"]
    assert 0 <= nodes["dfa"]["counters"]["accuracy"] <= 1
    # policy latest: the actuator may skip commands that a newer one replaced
    assert 0 < nodes["act"]["counters"]["commands"] <= windows
