"""`edgeloop hw report`: demo models, model files, parameters, PNG and JSON outputs, errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nodes.commands.hw import register
from runtime.errors import HardwareError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgeloop")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_report_demo_snn_on_loas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, js = tmp_path / "loas.png", tmp_path / "loas.json"
    args = _parse(
        [
            "hw",
            "report",
            "demo-snn",
            "--backend",
            "loas",
            "--param",
            "n_pe=8",
            "--png",
            str(png),
            "--json",
            str(js),
            "--batch",
            "2",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "layers.0.synapse" in out
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(js.read_text())
    assert data["backend"] == "loas" and data["total"]["energy_pj"] > 0
    assert {layer["name"] for layer in data["layers"]} == {"layers.0.synapse", "readout"}


def test_report_state_dict_file_on_rram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    path = tmp_path / "mlp.pt"
    torch.save(net.state_dict(), path)
    args = _parse(
        [
            "hw",
            "report",
            str(path),
            "--backend",
            "rram",
            "--param",
            "adc_bits=5",
            "--png",
            str(tmp_path / "r.png"),
        ]
    )
    assert args.func(args) == 0
    assert "pJ/MAC" in capsys.readouterr().out


def test_report_errors(tmp_path: Path) -> None:
    args = _parse(["hw", "report", "demo-mlp", "--param", "adc_bitz=5", "--png", str(tmp_path / "x.png")])
    with pytest.raises(HardwareError, match="valid:.*adc_bits"):
        args.func(args)
    args = _parse(["hw", "report", "no-such-model", "--png", str(tmp_path / "x.png")])
    with pytest.raises(HardwareError, match="demo-mlp"):
        args.func(args)


def test_report_models_io_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from models.io import save_model
    from models.snn import SpikingMLP

    path = tmp_path / "snn.pt"
    save_model(SpikingMLP([20, 12, 3]), path)
    args = _parse(["hw", "report", str(path), "--backend", "rram", "--png", str(tmp_path / "s.png")])
    assert args.func(args) == 0
    assert "layers.0.synapse" in capsys.readouterr().out


def test_bench_quick_without_training() -> None:
    from bench.hw import run

    cases = run(["--quick", "--no-loas", "--no-aihwkit"])
    names = [c.name for c in cases]
    assert any("vs ideal matmul" in n for n in names) and any("NeuroSim" in n for n in names)
    assert all(c.met for c in cases if "NeuroSim" in c.name)
