"""Labels come from the model (issue 18): a CSV recording with an activity outside the six synthetic ones,
pre-trained on, replayed with the model's numbering and adapted on (DFA, BP); unknown labels are clear errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.io import load_checkpoint, save_model
from models.snn import SpikingMLP
from nodes.builtin.adapt import BpAdapter, DfaAdapter, FrozenClassifier
from nodes.builtin.imu import ImuReplay
from nodes.pretrained.har import pretrain_spec, pretrained_model, synthetic_subject
from nodes.sensors.imu import ACTIVITIES, sliding_windows, write_imu_csv
from runtime.errors import GraphError, NodeError, RecordingError
from runtime.testing import NodeHarness

TINY = {"epochs": 1, "conv": [4, 8], "augment_copies": 0, "window": 64, "hop": 32, "rate_hz": 25.0}
# The wearer's data set: five of the synthetic activities, and "cycling" where the sixth was.
NAMES = ("walking", "running", "standing", "sitting", "stairs_up", "cycling")


pytestmark = pytest.mark.usefixtures("torch_one_thread_module")


@pytest.fixture(scope="module")
def cycling_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = synthetic_subject(7, 4.0, rate_hz=25.0, seed=3)
    assert rec.labels is not None and (rec.labels == ACTIVITIES.index("stairs_down")).any()
    path = tmp_path_factory.mktemp("data") / "wearer.csv"
    write_imu_csv(path, replace(rec, label_names=NAMES))  # stairs_down's rows now say "cycling"
    return path


@pytest.fixture(scope="module")
def cycling_model(cycling_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrained_model(pretrain_spec(TINY, [str(cycling_csv)]), tmp_path_factory.mktemp("cache"))


def test_pretraining_takes_the_data_sets_labels(cycling_model: Path) -> None:
    meta = load_checkpoint(cycling_model).meta
    assert meta["label_names"] == [*ACTIVITIES, "cycling"] and meta["n_classes"] == 7


async def _replay(path: Path, label_names: Any) -> tuple[np.ndarray, np.ndarray]:
    async with NodeHarness(ImuReplay, {"path": str(path), "speed": 0, "label_names": label_names}) as h:
        await h.run_source(timeout_s=30)
    return np.stack(h.payloads("sample")), np.array(h.payloads("label"))


@pytest.mark.parametrize("cls", [DfaAdapter, BpAdapter], ids=["dfa", "bp"])
async def test_replay_numbers_labels_from_the_model_and_adaptation_learns_them(
    cls: type, cycling_csv: Path, cycling_model: Path
) -> None:
    samples, labels = await _replay(cycling_csv, str(cycling_model))
    cycling = [*ACTIVITIES, "cycling"].index("cycling")
    assert (labels == cycling).any() and set(labels.tolist()) <= set(range(7))
    xs, ys = sliding_windows(samples, 64, 32), sliding_windows(labels, 64, 32)
    picks = [i for i in range(len(ys)) if (ys[i] == cycling).all()][:2] + [0]
    params = {"model": str(cycling_model), "backend": "ideal", "lr": 0.05, "learn_below": 1.0}
    async with NodeHarness(cls, params, node_id="ad") as h:
        for t, i in enumerate(picks):
            await h.send("x", np.ascontiguousarray(xs[i]), t_sense_ns=t)
            await h.send("label", np.ascontiguousarray(ys[i]), t_sense_ns=t)
    stats = h.payloads("stats")
    assert [s["label"] for s in stats[:2]] == [cycling, cycling]
    assert stats[-1]["labelled"] == 3 and stats[-1]["updates"] == 3
    assert {p["label"] for p in h.payloads("pred")} <= {*ACTIVITIES, "cycling"}


async def test_replay_names_a_label_the_model_does_not_know(cycling_csv: Path, tmp_path: Path) -> None:
    walker = save_model(SpikingMLP([6, 4, 2]), tmp_path / "m.pt", {"label_names": ["walking", "running"]})
    with pytest.raises(
        RecordingError,
        match=r"wearer.csv:\d+: column 'label': '\w+' is not a class of the model \(classes: 0 walking, 1 running\)",
    ):
        await _replay(cycling_csv, str(walker))
    with pytest.raises(RecordingError, match=r"'cycling' is not a class of the model \(classes: 0 walking"):
        await _replay(cycling_csv, list(ACTIVITIES))
    bare = save_model(SpikingMLP([6, 4, 2]), tmp_path / "bare.pt")
    with pytest.raises(GraphError, match="param 'label_names': .* has no 'label_names' meta"):
        await _replay(cycling_csv, str(bare))


@pytest.mark.parametrize("cls", [DfaAdapter, FrozenClassifier], ids=["dfa", "none"])
async def test_adapter_refuses_a_label_outside_the_model(
    cls: type, cycling_csv: Path, tmp_path: Path
) -> None:
    """Replayed with the built-in numbering (cycling = 6) into a six-class model: a clear error, where
    today DFA raised IndexError and adapt.none scored the window silently wrong."""
    six = pretrained_model(pretrain_spec({**TINY, "subjects": 1, "minutes": 0.5}), tmp_path)
    samples, labels = await _replay(cycling_csv, None)
    i = next(i for i, w in enumerate(sliding_windows(labels, 64, 32)) if (w == 6).all())
    async with NodeHarness(cls, {"model": str(six), "backend": "ideal"}, node_id="ad") as h:
        await h.send("x", np.ascontiguousarray(sliding_windows(samples, 64, 32)[i]), t_sense_ns=1)
        with pytest.raises(
            NodeError, match=r"node 'ad', input 'label': label 6 is not a class .*5 stairs_down"
        ):
            await h.send("label", np.ascontiguousarray(sliding_windows(labels, 64, 32)[i]), t_sense_ns=1)
