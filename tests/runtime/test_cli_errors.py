"""What a user did wrong gets one line (what, which file/port/node, what to do) and a non-zero exit code,
never a traceback (issue 18, "Errors instead of tracebacks"); `--version`, `bench --help`, `| head`."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from runtime.benchkit import Case
from runtime.cli import main
from runtime.errors import GraphError, TransportError
from runtime.filetype import MCAP_MAGIC
from runtime.graph import load_graph
from runtime.message import Message
from runtime.recording.writer import RecordingWriter

ROOT = Path(__file__).resolve().parents[2]
EDGELOOP = str(Path(sys.executable).with_name("edgeloop"))

COUNTER = """
name: tiny
nodes:
  - {id: src, uses: source.counter, params: {count: 3}}
  - {id: sink, uses: sink.counter, inputs: {in: src/out}}
"""


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(COUNTER)
    return path


# ----- 1. a directory or a recording where a graph file goes -----


def test_run_a_directory_says_so_and_names_the_graph_files_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "graph.yaml").write_text(COUNTER)
    assert main(["run", str(tmp_path)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"{tmp_path}: is a directory, not a graph file" in line
    assert str(tmp_path / "graph.yaml") in line


def test_run_a_recording_says_to_replay_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "x.mcap"
    rec.write_bytes(MCAP_MAGIC + b"\x00" * 32)
    for verb in ("run", "check"):
        assert main([verb, str(rec)]) == 2
        line = _one_line_error(capsys.readouterr().err)
        assert "this is an MCAP recording" in line and f"replay it with `edgeloop replay {rec}`" in line


# ----- 2. a metrics port in use -----


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def test_metrics_port_in_use_fails_before_anything_starts(
    tiny: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tiny), "--metrics-port", str(busy_port)]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert f"--metrics-port {busy_port}: 127.0.0.1:{busy_port} is not free" in line
    assert "choose another port" in line


def test_the_exporter_itself_names_a_taken_port(busy_port: int) -> None:
    """The port can be taken between the check and the run's start: the exporter says it the same way."""
    from runtime.observe import start_metrics_server

    with pytest.raises(TransportError, match=f"--metrics-port {busy_port}: cannot serve metrics"):
        start_metrics_server(busy_port, dict)


# ----- 3. an output file in a missing folder: the folder is created, before the work -----


def _fake_bench(argv: list[str]) -> list[Case]:
    return [Case("one", 1.0, "s")]


def test_bench_json_creates_the_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runtime.registry

    monkeypatch.setattr(
        runtime.registry, "load_plugin_table", lambda group: {"fake": f"{__name__}:_fake_bench"}
    )
    out = tmp_path / "out" / "deeper" / "x.json"
    assert main(["bench", "fake", "--json", str(out)]) == 0, capsys.readouterr().err
    assert json.loads(out.read_text())[0]["name"] == "one"


def test_stats_json_folder_that_cannot_be_made_fails_before_the_run(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("")
    assert main(["run", str(tiny), "--stats-json", str(tmp_path / "afile" / "s.json")]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert f"--stats-json {tmp_path / 'afile' / 's.json'}: cannot create its folder" in line


def test_run_stats_json_creates_the_missing_folder(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "nodir" / "s.json"
    p = subprocess.run(
        [EDGELOOP, "run", str(tiny), "--stats-json", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "failures" in json.loads(out.read_text())


# ----- 4. stdout closed by its reader (`| head`) -----


class _ClosedPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_exits_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = tmp_path / "run.mcap"
    with RecordingWriter(rec) as w:
        w.write(Message("src/out", 0, 1, 2, 1.0, "src"))
    for argv in (["info", "--json", str(rec)], ["schema"]):
        monkeypatch.setattr(sys, "stdout", _ClosedPipe())
        assert main(argv) == 0
        assert capsys.readouterr().err == ""


def test_schema_into_a_closed_pipe_exits_0_without_a_message() -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write, as `| head -1` after its line
    try:
        p = subprocess.run([EDGELOOP, "schema"], stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (0, "")


# ----- 5. files named in node parameters are checked before anything starts -----

CLASSIFIER = """
name: clf
nodes:
  - {{id: src, uses: source.counter, params: {{count: 3}}}}
  - id: clf
    uses: snn.classifier
    params: {{model: "{model}"}}
    inputs: {{x: src/out}}
"""


def test_check_and_run_name_a_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tmp_path / "g.yaml"
    g.write_text(CLASSIFIER.format(model="missing.pt"))
    for verb in ("check", "run"):
        assert main([verb, str(g)]) == 2
        line = _one_line_error(capsys.readouterr().err)
        assert (
            f"{g}:7: node 'clf' (snn.classifier), parameter 'model': file 'missing.pt' does not exist" in line
        )
        assert f"relative to the graph's folder, {tmp_path}" in line


def test_a_model_that_fails_in_setup_stops_the_run_with_one_line(tmp_path: Path) -> None:
    """The file exists (so `check` passes) but is no model: the run stops by itself (the source would
    go on for 10 minutes), the summary's failure line names the node, the hook, the parameter and the
    file, the exit code is 1, and no traceback is printed (the message is the user's, not a bug's)."""
    (tmp_path / "bad.pt").write_bytes(b"junk")
    g = tmp_path / "g.yaml"
    g.write_text(CLASSIFIER.format(model="bad.pt").replace("{count: 3}", "{count: 600000, rate_hz: 1000}"))
    p = subprocess.run([EDGELOOP, "run", str(g)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert "node 'clf' could not be set up" in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"failure: node 'clf' (main): setup: GraphError: node 'clf', param 'model': {tmp_path / 'bad.pt'}: "
    )
    assert "not a loadable edgeloop model file" in last


def test_schemes_outputs_and_remote_nodes_are_not_checked(tmp_path: Path) -> None:
    g = tmp_path / "g.yaml"
    g.write_text(CLASSIFIER.format(model="pretrained:gestures"))
    load_graph(g, check_files=True)  # a name the node resolves, not a file
    g.write_text(
        COUNTER
        + f"""  - {{id: rec, uses: record.mcap, params: {{path: "{tmp_path}/new.mcap"}}, inputs: {{x: src/out}}}}
"""
    )
    load_graph(g, check_files=True)  # an output file
    remote = CLASSIFIER.format(model="/only/on/the/robot.pt").replace(
        "name: clf\n", "name: clf\nagents: {robot: {host: 10.0.0.7}, main: {}}\n"
    )
    g.write_text(remote.replace("    uses: snn.classifier\n", "    uses: snn.classifier\n    agent: robot\n"))
    load_graph(g, check_files=True)  # read on the robot, not here
    with pytest.raises(GraphError, match="robot.pt' does not exist"):
        load_graph(
            g.with_name("local.yaml"), text=CLASSIFIER.format(model="/only/on/the/robot.pt"), check_files=True
        )


# ----- 6. --version and the benchmark names -----


def test_version_comes_from_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgeloop {version('edgeloop')}"


def test_bench_help_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.catalog import BENCHES

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"benchmarks: {', '.join(sorted(BENCHES))}" in out
