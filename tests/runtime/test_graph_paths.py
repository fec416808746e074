"""Relative paths in a graph are from the graph file's folder, whatever the current directory: files
nodes read (`Node.file_params`), `uses: file.py:Class` and modules next to the graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import GraphError
from runtime.graph import load_graph

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*.yaml")) + sorted(ROOT.glob("examples/*/*.yaml"))

NODE_FILE = """
from runtime.node import Context, Node, Params


class Three(Node):
    outputs = ("out",)

    class Params(Params):
        count: int = 3

    async def run(self, ctx: Context) -> None:
        for i in range(ctx.params.count):
            await ctx.emit("out", i)
"""

GRAPH = """
name: here
nodes:
  - {{id: src, uses: "{uses}"}}
  - {{id: imu, uses: imu.replay, params: {{path: {path}}}}}
  - {{id: sink, uses: sink.counter, inputs: {{a: src/out, b: imu/sample}}}}
"""


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A graph folder `g/` with a node file, a module and a data file; the test runs from `cwd/`."""
    g = tmp_path / "g"
    (g / "data").mkdir(parents=True)
    (g / "here_nodes.py").write_text(NODE_FILE)
    (g / "here_module.py").write_text(NODE_FILE)
    (g / "data" / "imu.csv").write_text("t_s,ax,ay,az,gx,gy,gz,label\n0,0,0,0,0,0,0,0\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return g


def write(g: Path, uses: str = "here_nodes.py:Three", path: str = "data/imu.csv") -> Path:
    f = g / "graph.yaml"
    f.write_text(GRAPH.format(uses=uses, path=path))
    return f


def test_a_relative_file_parameter_is_from_the_graph_folder(elsewhere: Path) -> None:
    g = load_graph(write(elsewhere), check_files=True)
    assert g.params["imu"].path == str(elsewhere / "data" / "imu.csv")  # absolute: the node opens it
    assert g.base_dir == str(elsewhere)
    # the graph named relatively (`../g/graph.yaml`) means the same folder
    assert load_graph(Path("..") / "g" / "graph.yaml").params["imu"].path == str(
        Path(os.path.abspath("..")) / "g" / "data" / "imu.csv"
    )


def test_absolute_paths_and_schemes_are_left_alone(elsewhere: Path) -> None:
    absolute = str(elsewhere / "data" / "imu.csv")
    assert load_graph(write(elsewhere, path=absolute), check_files=True).params["imu"].path == absolute
    text = "name: p\nnodes:\n  - {id: c, uses: snn.classifier, params: {model: 'pretrained:gestures'}}\n"
    assert load_graph(elsewhere / "p.yaml", text=text).params["c"].model == "pretrained:gestures"


def test_a_missing_file_names_the_graph_folder(elsewhere: Path) -> None:
    f = write(elsewhere, path="data/nope.csv")
    with pytest.raises(GraphError) as err:
        load_graph(f, check_files=True)
    assert f"{f}:5: node 'imu' (imu.replay), parameter 'path': file 'data/nope.csv' does not exist" in str(
        err.value
    )
    assert f"(relative to the graph's folder, {elsewhere})" in str(err.value)


def test_uses_a_file_or_a_module_next_to_the_graph(elsewhere: Path) -> None:
    assert load_graph(write(elsewhere)).classes["src"].__name__ == "Three"
    assert load_graph(write(elsewhere, uses="here_module:Three")).classes["src"].__name__ == "Three"
    with pytest.raises(
        GraphError, match=r"file 'gone\.py' \(relative to the graph's folder, .*/g\) does not"
    ):
        load_graph(write(elsewhere, uses="gone.py:Three"))
    with pytest.raises(GraphError, match=r"or a gone\.py in the graph's folder .*/g\?"):
        load_graph(write(elsewhere, uses="gone:Three"))


def test_edgeloop_run_from_another_folder(elsewhere: Path) -> None:
    """Through the launcher and a worker process: the node file and the data file are found."""
    f = write(elsewhere)
    env = {**os.environ, "EDGELOOP_LOG": "WARNING"}
    p = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "run", os.path.relpath(f), "--stats-json", "s.json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    sink = json.loads(Path("s.json").read_text())["view"]["nodes"]["sink"]
    assert sink["counters"]["received"] == 4  # 3 from the file's node, 1 sample from the CSV


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_load_from_any_folder(path: Path, elsewhere: Path) -> None:
    load_graph(path, check_files=True)


def test_record_and_replay_graphs_keep_the_graph_folder(elsewhere: Path) -> None:
    from runtime.recording.graph import add_recorder

    g = load_graph("graph.yaml", text=write(elsewhere).read_text(), base_dir=elsewhere)  # as a worker
    rg = add_recorder(g, "r.mcap", topics=["src/out"])
    assert rg.base_dir == str(elsewhere) and rg.params["imu"].path == str(elsewhere / "data" / "imu.csv")


def test_a_replay_of_the_stored_graph_finds_files_from_the_recorded_folder(
    elsewhere: Path, tmp_path: Path
) -> None:
    """`edgeloop replay run.mcap` (the graph stored in it) from another folder: the stored graph's
    `uses: here_nodes.py:Three` is still found, in the folder it was recorded from."""
    f = write(elsewhere)
    env = {**os.environ, "EDGELOOP_LOG": "WARNING"}
    exe = [sys.executable, "-m", "runtime.cli"]
    rec = [*exe, "record", os.path.relpath(f), "-o", str(tmp_path / "r.mcap")]
    p = subprocess.run(rec, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    (tmp_path / "third" / "deeper").mkdir(parents=True)  # "../g" from here is elsewhere
    rep = [*exe, "replay", str(tmp_path / "r.mcap"), "--speed", "0"]
    p = subprocess.run(
        rep, cwd=tmp_path / "third" / "deeper", env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert "replayed 5 messages" in p.stdout
