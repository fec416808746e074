"""`edgeloop eval MODEL --data DIR`: per-recording and per-window accuracy, confusion matrix, PNG, JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.adapt.har import HarInput
from models.io import load_checkpoint
from models.train import predict_logits
from nodes.commands import COMMANDS
from nodes.commands import eval as eval_cmd
from nodes.commands.train import load_har_folder, train_har
from nodes.sensors.imu import labelled_windows
from nodes.sensors.imu.synthetic import write_synthetic_dataset
from runtime.errors import RecordingError

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    eval_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("eval")
    write_synthetic_dataset(tmp / "csv", n_subjects=3, minutes_per_subject=1.0, seed=0)
    res = train_har(
        tmp / "csv", tmp / "har.pt", epochs=2, conv=(4,), timesteps=1, patience=None, progress=False
    )
    return res.path, tmp / "csv"


def _direct(model: Path, data: Path) -> tuple[list[tuple[str, int, int]], np.ndarray]:
    ck = load_checkpoint(model)
    prep = HarInput.from_meta(ck.meta)
    recs, names, paths = load_har_folder(data, ck.meta["rate_hz"])
    assert names == ck.meta["label_names"]
    cm = np.zeros((len(names), len(names)), np.int64)
    per = []
    for r, p in zip(recs, paths, strict=True):
        x, y = labelled_windows([r], prep.size, ck.meta["hop"])
        pred = predict_logits(ck.model, torch.from_numpy(x), prep).argmax(1).numpy()
        np.add.at(cm, (y, pred), 1)
        per.append((p.name, len(x), int((pred == y).sum())))
    return per, cm


def test_eval_is_registered() -> None:
    assert COMMANDS["eval"] == "nodes.commands.eval:register"


def test_eval_matches_a_direct_computation_and_writes_png_and_json(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = trained
    png, js = tmp_path / "fig" / "cm.png", tmp_path / "out" / "eval.json"
    assert _run(["eval", str(model), "--data", str(data), "--png", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    per, cm = _direct(model, data)
    doc = json.loads(js.read_text())
    assert [(r["file"], r["windows"], r["correct"]) for r in doc["recordings"]] == per
    assert doc["confusion"] == cm.tolist() and doc["windows"] == int(cm.sum()) > 0
    assert doc["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert doc["backend"] == "ideal" and doc["cost_per_window"]["macs"] > 0
    for name, n, correct in per:
        assert f"{name}  {n:7d}  {correct / n:8.3f}" in out
    assert f"per-window accuracy: {np.trace(cm) / cm.sum():.3f} on {cm.sum()} windows of 3 recordings" in out
    assert eval_cmd.confusion_text(cm, doc["label_names"]) in out
    assert "true \\ predicted" in out and all(n in out for n in doc["label_names"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_text_rows_are_true_classes() -> None:
    text = eval_cmd.confusion_text(np.array([[3, 1], [0, 12]]), ["walking", "sitting"])
    lines = text.splitlines()
    assert lines[1].split() == ["walking", "3", "1"] and lines[2].split() == ["sitting", "0", "12"]
    assert lines[0].split()[-2:] == ["walking", "sitting"]


def test_eval_on_an_emulated_backend_reports_cost(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = trained
    js = tmp_path / "e.json"
    argv = ["eval", str(model), "--data", str(data), "--backend", "rram:adc_bits=6", "--batch-size", "16"]
    assert _run([*argv, "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["backend"] == "rram" and doc["cost_per_window"]["energy_pj"] > 0


def test_unknown_recording_label_is_named_or_skipped(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = trained
    src = sorted(data.glob("*.csv"))[0]
    (tmp_path / "a.csv").write_text(src.read_text())
    (tmp_path / "b.csv").write_text(src.read_text().replace(",sitting\n", ",juggling\n"))
    with pytest.raises(RecordingError, match=r"b\.csv: label 'juggling' is not a class of .*--skip-unknown"):
        eval_cmd.evaluate_har(model, tmp_path)
    res = eval_cmd.evaluate_har(model, tmp_path, skip_unknown=True)
    assert res.skipped == {"b.csv": ["juggling"]}
    a, b = res.recordings
    assert 0 < b.windows < a.windows  # b lost its sitting windows, nothing else
    assert _run(["eval", str(model), "--data", str(tmp_path), "--skip-unknown"]) == 0
    assert "skipped in b.csv: windows labelled juggling" in capsys.readouterr().out


def test_eval_refuses_a_model_that_is_not_har(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not a model")
    with pytest.raises(RecordingError, match="not a loadable edgeloop model file"):
        eval_cmd.evaluate_har(tmp_path / "x.pt", tmp_path)
