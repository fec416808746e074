"""Observability: `top` and `topic` attach to a graph running in another process; flow tracking is correct
on a graph with a known injected delay; Prometheus metrics; graph pictures."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runtime.errors import EdgeloopError
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.observe import start_metrics_server
from runtime.render import to_png
from runtime.wiring import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]
EDGELOOP = [sys.executable, "-m", "runtime.cli"]

GRAPH = """
name: watched
agents: {a: {}, b: {}}
deadline_ms: 50
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 100000000, rate_hz: 100}}
  - {id: relay, uses: transform.relay, agent: b, inputs: {in: src/out}}
  - {id: sink, uses: sink.counter, agent: a, inputs: {in: relay/out}, params: {check_order: false}}
"""


@pytest.fixture
def running_graph(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`edgeloop run` in a subprocess, with its own runs directory; stopped with SIGINT at the end."""
    (tmp_path / "g.yaml").write_text(GRAPH)
    env = {**os.environ, "EDGELOOP_RUNS_DIR": str(tmp_path / "runs"), "EDGELOOP_LOG": "WARNING"}
    proc = subprocess.Popen(
        [*EDGELOOP, "run", str(tmp_path / "g.yaml"), "--duration", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "runs").glob("watched-*.json")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run did not start: {proc.communicate()[0][-2000:]}")
        time.sleep(0.05)  # polling for a file with a deadline
    yield env
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    out, _ = proc.communicate(timeout=15)
    assert time.monotonic() - t0 < 5.0, "stop took too long"
    assert proc.returncode == 0, out[-2000:]
    assert "edgeloop run summary" in out


def cli(env: dict[str, str], *args: str, timeout: float = 30) -> str:
    p = subprocess.run([*EDGELOOP, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_top_and_topic_attach_to_a_running_graph(running_graph: dict[str, str]) -> None:
    top = subprocess.run(
        [*EDGELOOP, "top", "--once", "--run", "watched"],
        cwd=ROOT,
        env=running_graph,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert top.returncode == 0, top.stderr
    assert top.stderr.startswith("attached to run watched-")  # on stderr: stdout stays the table
    assert "g.yaml, pid " in top.stderr and "runs running" not in top.stderr  # the only run
    listed = cli(running_graph, "list").splitlines()
    assert len(listed) == 1 and listed[0].startswith("watched-") and "agents a, b" in listed[0]
    out = top.stdout
    for name in ("src", "relay", "sink", "src/out -> relay/in", "relay/out -> sink/in", "src/out → sink/in"):
        assert name in out
    out = cli(running_graph, "topic", "echo", "relay/out", "-n", "3")
    lines = [ln for ln in out.splitlines() if ln.startswith("seq=")]
    assert len(lines) == 3
    seqs = [int(ln.split()[0].removeprefix("seq=")) for ln in lines]
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] == 2
    assert "origin=src/out" in lines[0]
    out = cli(running_graph, "topic", "hz", "src/out", "--window", "1.5")
    rate = float(out.split(":")[1].split("Hz")[0])
    assert 50 <= rate <= 130, out
    with pytest.raises(AssertionError, match="not an output"):
        cli(running_graph, "topic", "hz", "src/nope")


async def test_flow_tracking_sees_an_injected_delay() -> None:
    graph = load_graph(
        "delay.yaml",
        text="""
name: delay
deadline_ms: 10
too_late_ms: 200
nodes:
  - {id: src, uses: source.counter, params: {count: 40, rate_hz: 20}}
  - {id: slow, uses: transform.relay, inputs: {in: {from: src/out, policy: backpressure}}, params: {delay_ms: 25}}
  - {id: act, uses: actuator.console, inputs: {cmd: {from: slow/out, policy: backpressure}}}
""",
    )
    result = await asyncio.wait_for(Launcher(graph, env={"EDGELOOP_LOG": "WARNING"}).run(None), 60)
    path = result.view["paths"]["src/out → act/cmd"]
    assert path["count"] == 40
    assert 25_000 <= path["p50_us"] < 25_000 + 40_000
    assert path["late"] == 40  # every message took > 10 ms
    assert path["too_late"] < 40  # and (on any sane machine) most took < 200 ms


async def test_prometheus_endpoint_serves_histograms() -> None:
    port = free_tcp_port()
    graph = load_graph(
        "prom.yaml",
        text="""
name: prom
nodes:
  - {id: src, uses: source.counter, params: {count: 100000, rate_hz: 200}}
  - {id: sink, uses: sink.counter, inputs: {in: src/out}}
""",
    )
    launcher = Launcher(graph, env={"EDGELOOP_LOG": "WARNING"}, metrics_port=port)
    seen: list[dict[str, object]] = []
    launcher.on_stats = seen.append
    task = asyncio.create_task(launcher.run(None))
    deadline = time.monotonic() + 30
    while len(seen) < 2:
        assert time.monotonic() < deadline, "no statistics arrived"
        await asyncio.sleep(0.05)
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    )
    launcher.stop_requested.set()
    await asyncio.wait_for(task, 15)
    text = body.decode()
    assert 'edgeloop_edge_received_total{edge="src/out -> sink/in"}' in text
    assert 'edgeloop_edge_latency_seconds_bucket{edge="src/out -> sink/in",le="+Inf"}' in text
    assert "edgeloop_agent_rss_bytes" in text


def test_graph_png(tmp_path: Path) -> None:
    g = load_graph(ROOT / "examples" / "minimal.yaml")
    out = tmp_path / "demo.png"
    if shutil.which("dot") is None:
        with pytest.raises(EdgeloopError, match="apt-get install graphviz"):
            to_png(g, str(out))
        pytest.skip("Graphviz `dot` is not installed: checked the message that says how to install it")
    to_png(g, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_top_without_a_run_says_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "EDGELOOP_RUNS_DIR": str(tmp_path)}
    p = subprocess.run(
        [*EDGELOOP, "top", "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert p.returncode == 1
    assert "edgeloop run GRAPH.yaml" in p.stderr


def test_prometheus_exports_sensor_to_action_paths() -> None:
    port = free_tcp_port()
    path = {"count": 40, "late": 7, "too_late": 2, "p50_us": 1500.0, "p99_us": 9000.0, "max_us": 12000.0}
    view = {
        "edges": {},
        "agents": {},
        "paths": {
            "src/out → act/cmd": {**path, "deadline_ms": 10.0},
            "src/out → log/in": {**path, "deadline_ms": None, "p99_us": float("nan")},
        },
    }
    server = start_metrics_server(port, lambda: view)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    act = 'path="src/out → act/cmd"'
    assert f"edgeloop_path_messages_total{{{act}}} 40.0" in text
    assert f'edgeloop_path_latency_seconds{{{act},quantile="0.5"}} 0.0015' in text
    assert f'edgeloop_path_latency_seconds{{{act},quantile="1"}} 0.012' in text
    assert f"edgeloop_path_late_total{{{act}}} 7.0" in text
    assert f"edgeloop_path_too_late_total{{{act}}} 2.0" in text
    assert f"edgeloop_path_deadline_seconds{{{act}}} 0.01" in text
    log = 'path="src/out → log/in"'
    assert f"edgeloop_path_messages_total{{{log}}} 40.0" in text
    assert f'edgeloop_path_latency_seconds{{{log},quantile="0.99"}}' not in text  # NaN: no sample
    assert f"edgeloop_path_late_total{{{log}}}" not in text  # no deadline, nothing is late
