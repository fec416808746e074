"""The adapt.* nodes without sockets: infer + learn from paired windows, pre-training on first use, the report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from nodes.builtin.adapt import AdaptReport, BpAdapter, DfaAdapter, FrozenClassifier
from nodes.pretrained.har import pretrain_spec, pretrained_model, synthetic_subject
from nodes.sensors.imu import make_windows, write_synthetic_dataset
from runtime.errors import GraphError, NodeError
from runtime.testing import NodeHarness

TINY = {
    "subjects": 2,
    "minutes": 0.5,
    "epochs": 1,
    "conv": [4, 8],
    "augment_copies": 0,
    "window": 64,
    "hop": 32,
    "rate_hz": 25.0,
}
HW = {"kind": "rram", "prog_noise": 0.05, "drift_nu": 0.05, "drift_nu_std": 0.03, "seed": 1}


pytestmark = pytest.mark.usefixtures("torch_one_thread_module")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrained_model(pretrain_spec(TINY), tmp_path_factory.mktemp("cache"))


def _windows(n: int) -> tuple[np.ndarray, np.ndarray]:
    rec = synthetic_subject(1000, 1.0, shift=2.0, rate_hz=25.0, seed=1)
    x, _ = make_windows(rec, 64, 32, "majority")
    assert rec.labels is not None
    from nodes.sensors.imu import sliding_windows

    return x[:n], sliding_windows(rec.labels, 64, 32)[:n].copy()


@pytest.mark.parametrize("cls", [DfaAdapter, BpAdapter, FrozenClassifier], ids=["dfa", "bp", "none"])
async def test_adapter_pairs_windows_predicts_and_learns(cls: type, model: Path) -> None:
    x, labels = _windows(6)
    labels[2] = -1  # an unlabelled window: predicted, never scored
    params = {"model": str(model), "backend": HW, "drift_s_per_window": 3600, "lr": 0.05}
    async with NodeHarness(cls, params, node_id="ad") as h:
        for i in range(6):
            t = 1_000 + i
            if i % 2:  # labels may come first or second: pairing is by sensing time
                await h.send("label", labels[i], t_sense_ns=t)
                await h.send("x", x[i], t_sense_ns=t)
            else:
                await h.send("x", x[i], t_sense_ns=t)
                await h.send("label", labels[i], t_sense_ns=t)
        preds, stats = h.payloads("pred"), h.payloads("stats")
        assert len(preds) == 6 and {"class", "label", "confidence"} <= set(preds[0])
        assert preds[0]["label"] in ("walking", "running", "standing", "sitting", "stairs_up", "stairs_down")
        assert len(stats) == 5 and [m.t_sense_ns for m in h.outputs["stats"]] == [
            1000,
            1001,
            1003,
            1004,
            1005,
        ]
        last = stats[-1]
        assert last["rule"] == cls.rule and last["labelled"] == 5 and 0 <= last["accuracy"] <= 1
        assert last["updates"] == (0 if cls.rule == "none" else 5)
        assert (last["learning_energy_pj"] > 0) == (cls.rule != "none")
        assert h.ctx.counters["unlabelled"] == 1 and h.ctx.counters["accuracy"] == last["accuracy"]


async def test_pretrains_on_first_use_and_reuses_the_cache(tmp_path: Path) -> None:
    x, labels = _windows(1)
    params = {
        "pretrain": "synthetic",
        "pretrain_options": TINY,
        "cache_dir": str(tmp_path),
        "backend": "ideal",
    }
    async with NodeHarness(DfaAdapter, params) as h:
        await h.send("x", x[0])
    (cached,) = tmp_path.glob("har_dfa_*.pt")
    stamp = cached.stat().st_mtime_ns
    async with NodeHarness(FrozenClassifier, params) as h:
        await h.send("x", x[0])
        assert len(h.payloads("pred")) == 1
    assert cached.stat().st_mtime_ns == stamp


async def test_pretrains_on_csv_recordings(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path / "data", n_subjects=2, minutes_per_subject=0.5, rate_hz=25, seed=3)
    opts = {k: v for k, v in TINY.items() if k not in ("subjects", "minutes")}
    params = {
        "pretrain": [str(tmp_path / "data" / "*.csv")],
        "pretrain_options": opts,
        "cache_dir": str(tmp_path / "cache"),
        "backend": "ideal",
    }
    x, _ = _windows(1)
    async with NodeHarness(BpAdapter, params) as h:
        await h.send("x", x[0])
        assert len(h.payloads("pred")) == 1
    assert len(list((tmp_path / "cache").glob("har_dfa_*.pt"))) == 1


async def test_wrong_window_shape_and_bad_backend_are_named(model: Path) -> None:
    async with NodeHarness(DfaAdapter, {"model": str(model), "backend": "ideal"}, node_id="dfa") as h:
        with pytest.raises(NodeError, match=r"node 'dfa', input 'x'.*\[64, 6\].*window node's size to 64"):
            await h.send("x", np.zeros((128, 6), np.float32))
    with pytest.raises(GraphError, match="adc_bitz"):
        async with NodeHarness(DfaAdapter, {"model": str(model), "backend": {"kind": "rram", "adc_bitz": 4}}):
            pass
    with pytest.raises(GraphError, match="unknown key.*epoch.*valid: recordings"):
        async with NodeHarness(DfaAdapter, {"pretrain_options": {"epoch": 3}}):
            pass
    with pytest.raises(GraphError, match="'nope.pt' not found and pretrain is off"):
        async with NodeHarness(DfaAdapter, {"model": "nope.pt", "pretrain": None}) as h:
            await h.send("x", np.zeros((64, 6), np.float32))


async def test_report_writes_png_table_and_json(tmp_path: Path) -> None:
    params = {
        "png": str(tmp_path / "acc.png"),
        "table": str(tmp_path / "costs.md"),
        "json_path": str(tmp_path / "s.json"),
        "redraw_every": 40,
        "teardown_wait_s": 30,
    }
    base = {
        "updates": 3,
        "energy_pj_per_update": 10.0,
        "latency_ns_per_update": 5.0,
        "learning_mm2": 0.01,
        "total_mm2": 0.1,
        "inference_energy_pj_per_window": 100.0,
        "accuracy": 0.5,
    }
    async with NodeHarness(AdaptReport, params) as h:
        for i in range(30):
            await h.send("dfa", {**base, "correct": i % 2 == 0})
            await h.send(
                "bp",
                {**base, "energy_pj_per_update": 40.0, "latency_ns_per_update": 20.0, "correct": i % 3 == 0},
            )
            await h.send("none", {**base, "updates": 0, "correct": False})
        await h.send("dfa", "not a stats dict")
        assert h.ctx.counters["ignored"] == 1
    assert (tmp_path / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "costs.md").read_text()
    assert "| dfa |" in table and "energy per update, DFA/BP | 0.250" in table and "4.00×" in table
    assert '"hits"' in (tmp_path / "s.json").read_text()


async def test_model_from_train_har_adapts_the_readout_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from nodes.commands.train import train_har

    write_synthetic_dataset(tmp_path / "data", n_subjects=3, minutes_per_subject=0.5, rate_hz=25, seed=4)
    res = train_har(
        tmp_path / "data",
        tmp_path / "har.pt",
        window=64,
        hop=32,
        rate_hz=25.0,
        epochs=1,
        conv=(4, 8),
        progress=False,
    )
    x, labels = _windows(3)
    caplog.set_level(logging.WARNING, logger="edgeloop.node")
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("edgeloop")]:
        logging.getLogger(name).disabled = False  # a library's dictConfig in an earlier test may disable them
    async with NodeHarness(DfaAdapter, {"model": str(res.path), "backend": "ideal", "learn_below": 1.0}) as h:
        for i in range(3):
            await h.send("x", x[i], t_sense_ns=i)
            await h.send("label", labels[i], t_sense_ns=i)
        assert h.payloads("stats")[-1]["updates"] == 3
        assert h.node.adapter is not None and h.node.adapter.rule.adapt == []  # type: ignore[attr-defined]
    assert "adapting the readout only" in caplog.text
