"""Record a running graph, replay it into the same graph: bit-exact round trip, lossless speed 0, counted drops."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from recnodes import rich_payload
from test_recording import canon

from runtime.errors import RecordingError
from runtime.graph import Graph, load_graph
from runtime.launcher import Launcher, RunResult
from runtime.recording import RecordingReader
from runtime.recording.cli import register
from runtime.recording.graph import add_recorder, recordable_topics, replace_sources
from runtime.recording.info import read_overview, summarize

HERE = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "EDGELOOP_LOG": "WARNING"}

# Sources in one process, consumers in another; every consumer edge lossless, so the run is deterministic.
GRAPH = """
name: roundtrip
agents: {sense: {}, act: {}}
nodes:
  - {id: cnt, uses: source.counter, agent: sense, params: {count: 300, payload_bytes: 24, rate_hz: 3000}}
  - {id: sine, uses: signal.sine, agent: sense, params: {count: 200, rate_hz: 2000, channels: 3, seed: 7}}
  - {id: rich, uses: "recnodes:RichSource", agent: sense, params: {count: 150, seed: 3}}
  - id: relay
    uses: transform.relay
    agent: act
    inputs: {in: {from: cnt/out, policy: backpressure}}
  - id: sink
    uses: sink.counter
    agent: act
    params: {check_order: false}
    inputs:
      a: {from: relay/out, policy: backpressure}
      b: {from: sine/value, policy: backpressure}
      c: {from: rich/out, policy: backpressure}
"""
COUNTS = {"cnt/out": 300, "relay/out": 300, "sine/value": 200, "rich/out": 150}


def launch(graph: Graph, duration_s: float | None = None) -> RunResult:
    async def main() -> RunResult:
        return await asyncio.wait_for(Launcher(graph, env=ENV).run(duration_s), timeout=90)

    return asyncio.run(main())


def recorded(path: Path) -> dict[str, list[tuple[int, int, Any]]]:
    out: dict[str, list[tuple[int, int, Any]]] = {}
    for _, m in RecordingReader(path).messages():
        out.setdefault(m.topic, []).append((m.seq, m.t_sense_ns, canon(m.payload)))
    return out


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recording of the round-trip graph, shared by the tests below."""
    path = tmp_path_factory.mktemp("rec") / "run.mcap"
    g = load_graph("roundtrip.yaml", text=GRAPH)
    result = launch(add_recorder(g, path, topics=recordable_topics(g)))
    assert result.exit_code == 0, result.failures
    return path


def test_record_writes_every_message_with_its_graph(original: Path) -> None:
    info = summarize(original)
    assert info.complete and info.error is None
    assert {t: i.messages for t, i in info.topics.items()} == COUNTS
    assert all(i.gaps == 0 and i.restarts == 0 for i in info.topics.values())
    assert info.graph["name"] == "roundtrip" and info.graph["text"] == GRAPH
    assert json.loads(info.recorder["received"]) == COUNTS
    rich = [m.payload for _, m in RecordingReader(original).messages({"rich/out"})]
    assert [canon(p) for p in rich] == [canon(rich_payload(i, 3)) for i in range(150)]


def test_replay_at_speed_zero_round_trip_is_bit_exact(original: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.mcap"
    g = load_graph("roundtrip.yaml", text=GRAPH)
    plan = replace_sources(g, original, list(read_overview(original).topics), speed=0, timestamps="recorded")
    assert plan.replaced == ["cnt", "sine", "rich"] and not plan.warnings
    result = launch(add_recorder(plan.graph, again, topics=recordable_topics(plan.graph)))
    assert result.exit_code == 0, result.failures
    assert result.view["nodes"]["sink"]["counters"]["received"] == 650
    first, second = recorded(original), recorded(again)
    assert set(second) == set(COUNTS)
    for topic in COUNTS:  # payload bytes, sequence numbers and sensing times, message by message
        assert second[topic] == first[topic], topic


def slow_consumer(policy_graph: str, original: Path, speed: float) -> RunResult:
    g = load_graph("slow.yaml", text=policy_graph)
    plan = replace_sources(g, original, list(read_overview(original).topics), speed=speed)
    return launch(plan.graph)


SLOW = """
name: slow
nodes:
  - {id: cnt, uses: source.counter, params: {count: 300, payload_bytes: 24}}
  - id: sink
    uses: sink.counter
    inputs: {a: {from: cnt/out, policy: drop_oldest, queue: 4}}
    params: {delay_ms: 2}
"""


def test_speed_zero_loses_nothing_into_a_slow_consumer(original: Path) -> None:
    result = slow_consumer(SLOW, original, speed=0)
    assert result.exit_code == 0, result.failures
    e = result.view["edges"]["cnt/out -> sink/a"]
    assert (e["received"], e["dropped"]) == (300, 0)
    c = result.view["nodes"]["sink"]["counters"]
    assert c["received"] == 300 and c.get("skipped", 0) == 0 and c.get("out_of_order", 0) == 0
    assert result.view["nodes"]["cnt"]["counters"]["replayed"] == 300


def test_speed_one_drops_into_a_slow_consumer_are_counted_exactly(original: Path) -> None:
    result = slow_consumer(SLOW.replace("delay_ms: 2", "delay_ms: 10"), original, speed=1.0)
    assert result.exit_code == 0, result.failures
    e = result.view["edges"]["cnt/out -> sink/a"]
    sent = result.view["outputs"]["cnt/out"]["sent"]
    assert sent == 300
    # recorded at up to 3 kHz into a consumer of at most 100 Hz with a queue of 4: most must drop
    assert e["dropped"] > 0
    assert sent - e["received"] == e["dropped"]
    assert result.view["nodes"]["sink"]["counters"]["received"] == e["received"]


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        return int(args.func(args))
    finally:  # the command sets up logging for a terminal; give pytest its handlers back
        root.handlers[:], root.level = saved[0], saved[1]


def test_cli_record_info_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    Path("g.yaml").write_text(GRAPH)
    assert (
        cli(
            "record",
            "g.yaml",
            "-o",
            "a.mcap",
            "--topics",
            "cnt/*",
            "rich/*",
            "--set",
            "cnt.count=40",
            "--set",
            "rich.count=30",
            "--compression",
            "lz4",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "wrote a.mcap: 70 messages on 2 topic(s)" in out
    with pytest.raises(RecordingError, match="a.mcap exists; pass --force"):
        cli("record", "g.yaml", "-o", "a.mcap")
    assert cli("info", "a.mcap", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert {t: v["messages"] for t, v in info["topics"].items()} == {"cnt/out": 40, "rich/out": 30}
    assert info["complete"] and info["compression"] == {"lz4": 1} and info["graph"]["overrides"]
    # the graph comes from the recording (with its --set overrides); the result is recorded again
    assert cli("replay", "a.mcap", "--speed", "0", "--recorded-times", "--record", "b.mcap") == 0
    out = capsys.readouterr().out
    assert "replayed 70 messages from a.mcap into cnt, rich" in out
    assert recorded(Path("b.mcap"))["rich/out"] == recorded(Path("a.mcap"))["rich/out"]
    assert summarize("b.mcap").topics["relay/out"].messages == 40


def test_replay_of_a_graph_with_a_timer_ends_with_the_recording(tmp_path: Path) -> None:
    """examples/minimal.yaml: its monitor also ticks on a timer; the replay still ends by itself.
    (Retiming by default is checked on the plan, in test_recording_graph: latencies are wall-clock.)"""
    minimal = str(HERE.parents[2] / "examples" / "minimal.yaml")
    exe = [sys.executable, "-m", "runtime.cli"]
    env = {**os.environ, **ENV}
    rec = subprocess.run(
        [*exe, "record", minimal, "-o", "m.mcap", "--duration", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rec.returncode == 0, rec.stderr
    rep = subprocess.run(  # the old code ran until Ctrl-C: the timeout fails it
        [*exe, "replay", "m.mcap", "--speed", "0", "--stats-json", "s.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rep.returncode == 0, rep.stderr
    assert "timer input(s) tick dropped" in rep.stderr
    view = json.loads((tmp_path / "s.json").read_text())["view"]
    nodes = view["nodes"]  # speed 0 is lossless: the monitor saw every replayed sample
    assert nodes["monitor"]["counters"]["received"] == nodes["sensor"]["counters"]["replayed"] > 0
