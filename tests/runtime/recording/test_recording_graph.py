"""Record/replay as graph transformations: the recorder agent, topic globs, source replacement, speed-0 QoS."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import GraphError
from runtime.graph import Graph, load_graph
from runtime.recording.graph import add_recorder, recordable_topics, replace_sources, select_topics

GRAPH = """
name: loop
nodes:
  - {id: cam, uses: source.counter, agent: a, params: {count: 10}}
  - {id: imu, uses: signal.sine, params: {count: 5}}
  - id: relay
    uses: transform.relay
    inputs: {in: {from: cam/out, policy: latest, timeout_ms: 50}}
  - id: sink
    uses: sink.counter
    inputs: {a: relay/out, b: imu/value, tick: timer/hz/10}
"""


def graph(text: str = GRAPH) -> Graph:
    return load_graph("loop.yaml", text=text, overrides=None)


def test_topic_globs_select_outputs_and_a_useless_glob_is_an_error() -> None:
    g = graph()
    assert recordable_topics(g) == ["cam/out", "imu/value", "relay/out"]
    assert select_topics(g, None) == recordable_topics(g)
    assert select_topics(g, ["cam/*", "*/value"]) == ["cam/out", "imu/value"]
    with pytest.raises(GraphError, match=r"--topics 'lidar/\*' matches no output .*cam/out"):
        select_topics(g, ["lidar/*"])


@pytest.mark.parametrize("lossy", [False, True])
def test_recorder_gets_its_own_agent_and_one_input_per_topic(tmp_path: Path, lossy: bool) -> None:
    g = graph()
    rg = add_recorder(g, tmp_path / "r.mcap", topics=["cam/out", "relay/out"], lossy=lossy, queue=77)
    rec = rg.nodes["recorder"]
    assert rec.uses == "record.mcap" and rg.agent_of("recorder") == "recorder"
    # agents used without being declared (here 'a' and the default) are declared alongside the recorder's
    assert (
        set(rg.agents) == {"a", "main", "recorder"}
        and rg.agent_of("cam") == "a"
        and rg.agent_of("imu") == "main"
    )
    specs = {p: rec.input_spec(p) for p in rec.inputs}
    assert {s.from_ for s in specs.values()} == {"cam/out", "relay/out"}
    assert {s.policy for s in specs.values()} == {"drop_oldest" if lossy else "backpressure"}
    assert {s.queue for s in specs.values()} == {77}
    assert rg.params["recorder"].path == str((tmp_path / "r.mcap").resolve())
    assert rg.params["recorder"].metadata["text"] == g.source_text
    assert len(rg.edges) == len(g.edges) + 2


def test_recorder_id_does_not_clash_with_a_node_called_recorder(tmp_path: Path) -> None:
    g = graph(GRAPH.replace("id: sink", "id: recorder"))
    rg = add_recorder(g, tmp_path / "r.mcap", topics=["imu/value"])
    assert rg.nodes["recorder_2"].uses == "record.mcap" and rg.nodes["recorder"].uses == "sink.counter"


def test_replace_defaults_to_recorded_sources_and_keeps_outputs_and_agent() -> None:
    plan = replace_sources(
        graph(), "r.mcap", ["cam/out", "imu/value", "relay/out"], speed=2.0, loops=3, start_s=1.0, end_s=2.5
    )
    g = plan.graph
    assert plan.replaced == ["cam", "imu"]
    assert g.nodes["cam"].uses == "replay.mcap" and g.agent_of("cam") == "a"
    assert g.outputs["cam"] == ["out"] and g.outputs["imu"] == ["value"]
    p = g.params["cam"]
    assert (p.speed, p.loops, p.start_s, p.end_s, p.topics) == (2.0, 3, 1.0, 2.5, {"out": "cam/out"})
    assert g.nodes["relay"].uses == "transform.relay"  # recorded, but not a source
    assert g.nodes["relay"].input_spec("in").policy == "latest"  # speed > 0: the graph's own QoS


def test_speed_zero_switches_downstream_edges_to_backpressure_but_not_timers() -> None:
    plan = replace_sources(graph(), "r.mcap", ["cam/out"], speed=0)
    g = plan.graph
    assert plan.replaced == ["cam"]
    policies = {e.name: e.spec.policy for e in g.edges}
    assert policies["cam/out -> relay/in"] == "backpressure"
    assert policies["relay/out -> sink/a"] == "backpressure"
    assert policies["imu/value -> sink/b"] == "drop_oldest"  # not downstream of a replay
    assert policies["timer/hz/10 -> sink/tick"] == "drop_oldest"
    assert g.nodes["relay"].input_spec("in").timeout_ms == 50  # the rest of the spec is kept


def test_speed_zero_keeps_feedback_edges_as_they_are() -> None:
    g = graph("""
name: cyc
nodes:
  - {id: cam, uses: source.counter}
  - id: mix
    uses: recnodes:Merge
    inputs: {a: cam/out, back: ctl/out}
  - id: ctl
    uses: transform.relay
    inputs: {in: mix/out}
""")
    plan = replace_sources(g, "r.mcap", ["cam/out"], speed=0)
    policies = {e.name: e.spec.policy for e in plan.graph.edges}
    assert policies == {
        "cam/out -> mix/a": "backpressure",
        "mix/out -> ctl/in": "backpressure",
        "ctl/out -> mix/back": "drop_oldest",
    }


def test_replace_errors_name_the_problem() -> None:
    with pytest.raises(GraphError, match="has no node 'lidar'"):
        replace_sources(graph(), "r.mcap", ["cam/out"], replace=["lidar"])
    with pytest.raises(GraphError, match="no recorded output of 'imu'"):
        replace_sources(graph(), "r.mcap", ["cam/out"], replace=["imu"])
    with pytest.raises(
        GraphError, match=r"no source of graph 'loop' \(sources: cam, imu\) has recorded outputs"
    ):
        replace_sources(graph(), "r.mcap", ["relay/out"])


def test_replacing_a_node_with_inputs_warns() -> None:
    plan = replace_sources(graph(), "r.mcap", ["relay/out"], replace=["relay"])
    assert plan.graph.nodes["relay"].uses == "replay.mcap" and not plan.graph.nodes["relay"].inputs
    assert any("inputs (in) are ignored" in w for w in plan.warnings)


def test_replay_drops_timers_of_nodes_fed_only_by_replays_so_it_ends() -> None:
    minimal = load_graph(Path(__file__).resolve().parents[3] / "examples" / "minimal.yaml")
    plan = replace_sources(minimal, "r.mcap", ["sensor/value", "filter/y"], speed=0)
    g = plan.graph
    assert plan.replaced == ["sensor"]
    assert set(g.nodes["monitor"].inputs) == {"raw"}  # timer/hz/10 would keep it running forever
    assert g.params["sensor"].timestamps == "replay"  # retimed by default
    assert any("node 'monitor': timer input(s) tick dropped" in w for w in plan.warnings)
    # a node with a data input from a live source keeps its timer; so does a replay until stopped
    assert "tick" in replace_sources(graph(), "r.mcap", ["cam/out"]).graph.nodes["sink"].inputs
    assert (
        "tick" in replace_sources(minimal, "r.mcap", ["sensor/value"], loops=0).graph.nodes["monitor"].inputs
    )
