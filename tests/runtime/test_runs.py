"""The run registry: which runs are alive, how `--run` picks one, what `edgeloop list` and `top` say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.cli_runs import describe_run, runs_text
from runtime.errors import EdgeloopError
from runtime.observe import find_run, list_runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGELOOP_RUNS_DIR", str(tmp_path))
    return tmp_path


def _run_file(d: Path, name: str, pid: int, started: float) -> Path:
    info = {
        "name": name,
        "pid": pid,
        "graph_file": f"/graphs/{name}.yaml",
        "started": started,
        "telemetry": f"ipc:///run/{name}/stats",
        "tap": {"a": f"ipc:///run/{name}/tap-a"},
        "metrics": None,
        "node_agent": {"src": "a", "sink": "b"},
        "outputs": {"src": ["out"]},
    }
    f = d / f"{name}-{pid}.json"
    f.write_text(json.dumps(info))
    return f


def _dead_pid() -> int:
    p = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(p.stdout)


def test_only_runs_whose_launcher_lives_are_listed(runs: Path) -> None:
    now = time.time()
    live = _run_file(runs, "live", os.getpid(), now - 1)
    dead = _run_file(runs, "dead", _dead_pid(), now - 1)
    reused = _run_file(runs, "reused", os.getpid(), 1000.0)  # this pid started long after that launcher
    (runs / "half-1.json").write_text("{")  # being written: ignored, kept
    assert [r["name"] for r in list_runs()] == ["live"]
    assert live.exists() and (runs / "half-1.json").exists()
    assert not dead.exists() and not reused.exists()


def test_run_selector_takes_a_name_a_pid_or_name_pid(runs: Path) -> None:
    me = os.getpid()
    _run_file(runs, "older", me, time.time() - 1.5)
    _run_file(runs, "newer", me, time.time() - 1)
    assert find_run()["name"] == "newer"
    assert find_run("older")["name"] == "older"
    assert find_run(f"older-{me}")["name"] == "older"
    assert find_run(str(me))["name"] == "newer"  # the newest with that pid
    with pytest.raises(
        EdgeloopError, match=rf"'nope' found .*running: older-{me}, newer-{me}.*--run NAME\|PID"
    ):
        find_run("nope")


def test_attach_names_the_run_and_how_to_pick_another(runs: Path) -> None:
    me = os.getpid()
    _run_file(runs, "older", me, time.time() - 1.5)
    _run_file(runs, "newer", me, time.time() - 1)
    text = describe_run(find_run(), len(list_runs()))
    assert text.startswith(f"attached to run newer-{me} (graph /graphs/newer.yaml, pid {me}, started ")
    assert "2 runs running, pick one with --run" in text
    assert "--run" not in describe_run(find_run(), 1)


def test_list_prints_one_line_per_running_graph(runs: Path) -> None:
    me = os.getpid()
    _run_file(runs, "g1", me, time.time() - 1.5)
    _run_file(runs, "g2", me, time.time() - 1)
    _run_file(runs, "gone", _dead_pid(), time.time())
    env = {**os.environ, "EDGELOOP_RUNS_DIR": str(runs)}
    out = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert out == runs_text(list_runs()) + "\n"
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"g1-{me}  graph /graphs/g1.yaml  pid {me}  started ")
    assert (
        "agents a, b" in lines[0]
        and "stats ipc:///run/g1/stats" in lines[0]
        and "taps a=ipc:///run/g1/tap-a" in lines[0]
    )
    assert runs_text([]) == "no running graphs"
