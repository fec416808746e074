"""Graph files: every valid example loads; every invalid one fails with its file:line:key message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zmq.asyncio

from runtime.agent import AgentWorker
from runtime.errors import GraphError
from runtime.graph import load_graph
from runtime.render import to_dot, to_mermaid
from runtime.wiring import plan_wiring

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("valid-*.yaml")), ids=lambda p: p.name)
def test_valid_graphs_load(path: Path) -> None:
    g = load_graph(path)
    assert g.spec.nodes
    assert to_mermaid(g).startswith("flowchart")
    assert to_dot(g).startswith("digraph")


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("invalid-*.yaml")), ids=lambda p: p.name)
def test_invalid_graphs_name_file_line_and_key(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(GraphError) as info:
        load_graph(path)
    assert expected in str(info.value)


def test_demo_example_is_valid() -> None:
    g = load_graph(EXAMPLES / "demo.yaml")
    assert len(g.agents) >= 2


def test_size_cap(tmp_path: Path) -> None:
    p = tmp_path / "huge.yaml"
    p.write_text("name: x\n" + "# pad\n" * 300_000)
    with pytest.raises(GraphError, match="limit for graph files"):
        load_graph(p)


def test_set_overrides_and_their_errors() -> None:
    g = load_graph(GRAPHS / "valid-minimal.yaml", ["src.count=7"])
    assert g.params["src"].count == 7
    with pytest.raises(GraphError, match="no node 'nope'"):
        load_graph(GRAPHS / "valid-minimal.yaml", ["nope.count=7"])
    with pytest.raises(GraphError, match="parameter 'count'"):
        load_graph(GRAPHS / "valid-minimal.yaml", ["src.count=lots"])


def test_feedback_edges_found() -> None:
    text = """
name: loop
nodes:
  - {id: a, uses: transform.relay, inputs: {in: b/out}}
  - {id: b, uses: transform.relay, inputs: {in: a/out}}
"""
    g = load_graph("loop.yaml", text=text)
    assert len(g.feedback_edges()) == 1
    assert "-.->" in to_mermaid(g)


SUBSET = """
name: subset
nodes:
  - {id: imu, uses: imu.synthetic, outputs: [sample]}
  - {id: sink, uses: sink.counter, inputs: {in: imu/sample}}
"""


async def test_an_output_left_out_of_outputs_is_emitted_into_nothing(tmp_path: Path) -> None:
    g = load_graph("subset.yaml", text=SUBSET)
    assert g.outputs["imu"] == ["sample"]
    zctx = zmq.asyncio.Context()
    w = AgentWorker(g, "main", plan_wiring(g, tmp_path), zctx=zctx)
    try:
        w.connect_routes()
        await w.emit("imu", "label", 3, None, "")  # declared by imu.synthetic, not routed: no error
        await w.emit("imu", "sample", 1.0, None, "")
        assert len(w.runners["sink"].queues["in"]) == 1
        assert set(w.router.outputs()) == {"imu/sample"}  # 'label' counted nowhere
        with pytest.raises(GraphError, match="output 'nope', which is not declared"):
            await w.emit("imu", "nope", 1, None, "")  # not an output of the class: still refused
    finally:
        await asyncio.wait_for(w.stop(), 5.0)
        w.close()
        zctx.term()


def test_an_output_the_class_lacks_is_refused_in_outputs() -> None:
    bad = SUBSET.replace("outputs: [sample]", "outputs: [sample, nope]")
    with pytest.raises(
        GraphError, match=r"subset.yaml:4: node 'imu' \(imu.synthetic\), output 'nope': not an output"
    ):
        load_graph("subset.yaml", text=bad)
