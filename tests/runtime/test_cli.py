"""The `edgeloop` command line: exit codes, messages, catalogue, schema, and Ctrl-C behaviour."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
EDGELOOP = [sys.executable, "-m", "runtime.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGELOOP, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_check_valid_and_invalid() -> None:
    ok = run("check", str(GRAPHS / "valid-full.yaml"))
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = run("check", str(GRAPHS / "invalid-undeclared-output.yaml"))
    assert bad.returncode == 2
    assert "invalid-undeclared-output.yaml:9: node 'sink', input 'in'" in bad.stderr


def test_nodes_catalogue_and_schema() -> None:
    p = run("nodes", "--json")
    assert p.returncode == 0, p.stderr
    names = {n["name"]: n for n in json.loads(p.stdout)}
    assert {"signal.sine", "source.counter", "actuator.console", "sink.counter"} <= set(names)
    assert names["actuator.console"]["inputs"] == ["cmd", "tick"]
    assert "rate_hz" in names["signal.sine"]["params"]["properties"]
    schema = json.loads(run("schema").stdout)
    assert "nodes" in schema["properties"] and schema["additionalProperties"] is False


def test_set_override_reaches_the_node(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    p = run("run", str(GRAPHS / "valid-minimal.yaml"), "--set", "src.count=17", "--stats-json", str(stats))
    assert p.returncode == 0, p.stderr
    view = json.loads(stats.read_text())["view"]
    assert view["outputs"]["src/out"]["sent"] == 17
    edge = view["edges"]["src/out -> sink/in"]
    assert edge["received"] + edge["dropped"] == 17


def test_second_ctrl_c_kills_a_stuck_graph(tmp_path: Path) -> None:
    g = tmp_path / "stuck.yaml"
    g.write_text("""
name: stuck
nodes:
  - {id: busy, uses: transform.relay, inputs: {in: timer/millis/1500}, params: {delay_ms: 60000}}
""")
    env = {**os.environ, "EDGELOOP_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen(
        [*EDGELOOP, "run", str(g)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "runs").glob("stuck-*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "the graph did not start"
        time.sleep(0.05)  # polling for the run file, bounded
    from runtime.errors import EdgeloopError
    from runtime.observe import TelemetryClient, find_run

    os.environ["EDGELOOP_RUNS_DIR"] = env["EDGELOOP_RUNS_DIR"]
    client = TelemetryClient(find_run("stuck"))
    try:
        while client.next(timeout_s=30)["nodes"].get("busy", {}).get("state") != "running":
            assert time.monotonic() < deadline, "the graph did not start running"
        # The first tick (1.5 s) blocks the worker's loop for a minute: its statistics stop coming.
        with pytest.raises(EdgeloopError, match="no statistics"):
            while time.monotonic() < deadline:
                client.next(timeout_s=1.5)
    finally:
        client.close()
        del os.environ["EDGELOOP_RUNS_DIR"]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 1, out[-3000:]  # a killed agent is a failure, reported as such
    assert "killed" in out


def test_nodes_table_says_required_and_wraps_instead_of_truncating() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run(
        [*EDGELOOP, "nodes", "adapt.none"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    ).stdout
    assert "PydanticUndefined" not in out and "…" not in out  # was `dict=PydanticUnd…`, `drift_s_per_wind…`
    cells = [ln.split("│") for ln in out.splitlines() if ln.startswith("│")]
    flat = "".join(c[4].replace(" ", "") for c in cells)  # the parameters column, its wrapped lines rejoined
    assert "pretrain_options:dict[str,Any]={}" in flat and "drift_s_per_window:float=0.0" in flat
    assert "pretrain:Union[Literal['synthetic'],list[str],NoneType]='synthetic'" in flat
    assert "(the baseline)." in " ".join(c[5].strip() for c in cells)  # the description, wrapped
    record = subprocess.run(
        [*EDGELOOP, "nodes", "record.mcap"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    ).stdout
    assert "path: str (required)" in record
