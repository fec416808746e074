"""`edgeloop train har|event2vec` and `edgeloop quantize`, called through their argparse registration."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from models.io import load_checkpoint
from nodes.commands import quantize as quantize_cmd
from nodes.commands import train as train_cmd
from nodes.sensors.imu import labelled_windows
from nodes.sensors.imu.synthetic import write_synthetic_dataset


def _parse(register: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))  # type: ignore[operator]
    return parser.parse_args(argv)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def har_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("har")
    write_synthetic_dataset(tmp / "csv", n_subjects=3, minutes_per_subject=1.5, seed=0)
    args = _parse(
        train_cmd.register,
        [
            "train",
            "har",
            "--data",
            str(tmp / "csv"),
            "--epochs",
            "2",
            "--out",
            str(tmp / "har.pt"),
            "--conv",
            "8",
            "--timesteps",
            "2",
            "--quiet",
        ],
    )
    assert args.func(args) == 0
    return tmp / "har.pt"


def test_train_har_writes_a_model_with_heldout_accuracy(
    har_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ck = load_checkpoint(har_model)
    assert ck.meta["task"] == "har" and 0.0 <= ck.meta["heldout_accuracy"] <= 1.0
    assert ck.meta["heldout_windows"] > 0 and ck.meta["label_names"][0] == "walking"
    assert ck.meta["har_input"]["size"] == 128


def test_train_har_picks_the_epoch_on_a_validation_split(har_model: Path) -> None:
    meta = load_checkpoint(har_model).meta
    # 3 subjects: 1 held out, 1 of the 2 left validates (by file), the other trains
    assert meta["val_windows"] > 0 and meta["train_windows"] > 0 and meta["max_epochs"] == 2
    assert 1 <= meta["best_epoch"] <= meta["epochs_run"] <= 2 and 0.0 <= meta["val_accuracy"] <= 1.0


def test_validation_split_by_file_else_by_window(tmp_path: Path) -> None:
    paths = write_synthetic_dataset(tmp_path, n_subjects=3, minutes_per_subject=1.0, seed=0)
    recs, _, _ = train_cmd.load_har_folder(tmp_path, 50.0)
    rng = np.random.default_rng(0)
    xt, _, xv, _ = train_cmd._train_val_windows(recs, 128, 64, 0.2, rng)
    per_file = [len(labelled_windows([r], 128, 64)[0]) for r in recs]
    assert len(paths) == 3 and len(xv) in per_file and len(xt) + len(xv) == sum(per_file)
    xt, yt, xv, yv = train_cmd._train_val_windows(recs[:1], 128, 64, 0.25, rng)
    assert len(xv) == round(0.25 * per_file[0]) and len(xt) + len(xv) == per_file[0]
    assert len(yt) == len(xt) and len(yv) == len(xv)
    xt, _, xv, _ = train_cmd._train_val_windows(recs, 128, 64, 0.0, rng)
    assert len(xv) == 0 and len(xt) == sum(per_file)


def test_train_har_cli_reports_the_chosen_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_synthetic_dataset(tmp_path / "csv", n_subjects=3, minutes_per_subject=1.0, seed=1)
    argv = ["train", "har", "--data", str(tmp_path / "csv"), "--out", str(tmp_path / "m.pt")]
    argv += ["--epochs", "3", "--patience", "1", "--conv", "4", "--timesteps", "1", "--quiet"]
    args = _parse(train_cmd.register, argv)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    meta = load_checkpoint(tmp_path / "m.pt").meta
    assert f"chose epoch {meta['best_epoch']} of {meta['epochs_run']}" in out
    assert f"validation accuracy {meta['val_accuracy']:.3f} on {meta['val_windows']} windows" in out


def test_train_har_needs_data(tmp_path: Path) -> None:
    args = _parse(train_cmd.register, ["train", "har", "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit, match="--data DIR"):
        args.func(args)


def test_rotate_scale_keeps_norms_without_gain() -> None:
    x = torch.randn(4, 16, 6)
    y = train_cmd.rotate_scale(x, 30.0, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(x[..., :3].norm(dim=-1), y[..., :3].norm(dim=-1), atol=1e-5)
    assert not torch.allclose(x, y)


def test_quantize_har_model_to_pt_and_onnx(har_model: Path, tmp_path: Path) -> None:
    ck = load_checkpoint(har_model)
    size = ck.meta["har_input"]["size"]
    np.save(
        tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((40, size, 6)).astype(np.float32) * 3
    )
    for out, method in (("q.pt", "gptaq"), ("q.onnx", "gptq")):
        args = _parse(
            quantize_cmd.register,
            [
                "quantize",
                str(har_model),
                "--method",
                method,
                "--bits",
                "4",
                "--calib",
                str(tmp_path / "calib.npy"),
                "-o",
                str(tmp_path / out),
                "--quiet",
            ],
        )
        assert args.func(args) == 0
    q = load_checkpoint(tmp_path / "q.pt")
    assert q.meta["quant"]["method"] == "gptaq" and set(q.quant["layers"]) == {"layers.0.synapse", "readout"}
    graph = onnx.load(str(tmp_path / "q.onnx")).graph
    assert [n.op_type for n in graph.node].count("MatMulNBits") == 1  # the readout; the conv stays fp32


def test_train_event2vec_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(
        train_cmd.register,
        [
            "train",
            "event2vec",
            "--per-class",
            "2",
            "--test-per-class",
            "1",
            "--size",
            "32",
            "--events",
            "32",
            "--dim",
            "16",
            "--layers",
            "1",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "e2v.pt"),
            "--quiet",
        ],
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "voxel CNN" in out
    ck = load_checkpoint(tmp_path / "e2v.pt")
    assert ck.arch["name"] == "event2vec" and len(ck.meta["label_names"]) == 8


def test_quantize_tesseraq_blocks_from_the_cli(har_model: Path, tmp_path: Path) -> None:
    from models.io import save_model
    from models.mlp import MLP
    from runtime.errors import EdgeloopError

    torch.manual_seed(0)
    save_model(MLP([8, 16, 4]), tmp_path / "mlp.pt", meta={})
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((80, 8)).astype(np.float32))
    common = ["--method", "tesseraq", "--bits", "3", "--calib", str(tmp_path / "calib.npy"), "--quiet"]
    args = _parse(
        quantize_cmd.register,
        ["quantize", str(tmp_path / "mlp.pt"), *common, "--blocks", "net", "-o", str(tmp_path / "q.pt")],
    )
    assert args.func(args) == 0
    q = load_checkpoint(tmp_path / "q.pt")
    assert q.meta["quant"]["blocks"] == ["net"] and set(q.quant["layers"]) == {"net.0", "net.2"}
    # A spiking layer takes and returns its state: refused with the reason, not a traceback.
    size = load_checkpoint(har_model).meta["har_input"]["size"]
    np.save(tmp_path / "har.npy", np.random.default_rng(0).standard_normal((40, size, 6)).astype(np.float32))
    har = [*common[:4], "--calib", str(tmp_path / "har.npy"), "--quiet"]
    args = _parse(
        quantize_cmd.register,
        ["quantize", str(har_model), *har, "--blocks", "layers.0", "-o", str(tmp_path / "h.pt")],
    )
    with pytest.raises(EdgeloopError, match="returns a LayerStep"):
        args.func(args)


def test_train_har_names_a_bad_csv_header_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.cli import main

    (tmp_path / "a.csv").write_text("t_s,ax,ay,az,gx,gy,gq,label\n0,1,2,3,4,5,6,walking\n")
    assert main(["train", "har", "--data", str(tmp_path), "-o", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        f"error: {tmp_path / 'a.csv'}:1: missing column 'gz' (rad/s) (header has: t_s, ax, ay, az, gx, gy, gq, "
        "label; expected t_s,ax,ay,az[,gx,gy,gz][,label] (t_s in s, ax/ay/az in m/s², gx/gy/gz in rad/s))"
    ]
