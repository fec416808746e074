"""The default demo (examples/demo.yaml) and the toy (examples/minimal.yaml) end to end, the pretrained
gesture model's cache, the camera labels it is trained on, and `eval.accuracy`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import nodes.pretrained.gestures as gestures
from models.io import load_checkpoint
from nodes.builtin.accuracy import AccuracySink
from nodes.builtin.event_camera import SyntheticEventCameraSource
from nodes.builtin.inference import SnnClassifier
from nodes.pretrained.gestures import GestureSpec, gesture_data, pretrained_gestures
from runtime.errors import GraphError
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.testing import NodeHarness

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# Trains in ~6 s on a busy 2-core machine; held-out 75 %, 11 of the demo camera's first 16 gestures
# (chance: 25 %). Seeded, so the same model every time.
TINY = GestureSpec(train_trials=96, test_trials=32, epochs=6)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrained_gestures(TINY, tmp_path_factory.mktemp("pretrained"))


def test_pretrained_gestures_train_once_then_load(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = load_checkpoint(tiny_model).meta
    assert meta["label_names"] == list(TINY.classes) and meta["n_classes"] == 4
    assert meta["representation"] == {"kind": "voxel_grid", "bins": TINY.bins}
    assert meta["test_accuracy"] > 0.5  # held-out gestures of another camera seed; chance is 0.25
    stamp = tiny_model.stat().st_mtime_ns

    def no_training(spec: GestureSpec) -> None:
        raise AssertionError("trained again although the model is cached")

    monkeypatch.setattr(gestures, "train_gesture_snn", no_training)
    assert pretrained_gestures(TINY, tiny_model.parent) == tiny_model
    assert tiny_model.stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="trained again"):  # another spec is another file
        pretrained_gestures(GestureSpec(epochs=1), tiny_model.parent)


async def test_camera_labels_match_the_training_data() -> None:
    """One 1 s batch per gesture: the label sent with a batch is the gesture filmed in it, as the trainer
    labels its data (the render at a batch's end already belongs to the next gesture)."""
    spec = GestureSpec(width=16, height=16)
    params = {
        "width": 16,
        "height": 16,
        "classes": list(spec.classes),
        "step_us": spec.step_us,
        "period_us": 1_000_000,
        "duration_us": 8_000_000,
        "speed": 0,
        "seed": 5,
    }
    async with NodeHarness(SyntheticEventCameraSource, params) as h:
        await h.run_source(timeout_s=30)
    _, labels = gesture_data(spec, 5, 8)
    assert h.payloads("label") == labels.tolist()
    assert len(set(labels.tolist())) > 1  # more than one gesture, so an off-by-one would show


async def test_unknown_pretrained_model_names_the_choices() -> None:
    with pytest.raises(GraphError, match=r"param 'model'.*pretrained:nope.*pretrained:gestures"):
        async with NodeHarness(SnnClassifier, {"model": "pretrained:nope"}):
            pass


async def test_accuracy_pairs_by_sensing_time_and_averages_cost() -> None:
    cost = {"backend": "loas", "total": {"energy_pj": 2000.0, "latency_ns": 3000.0}}
    async with NodeHarness(AccuracySink) as h:
        await h.send("label", 1, t_sense_ns=10)  # label first, prediction later
        await h.send("pred", {"class": 2, "label": "c"}, t_sense_ns=20)
        await h.send("pred", {"class": 1, "label": "b"}, t_sense_ns=10)
        await h.send("label", 2, t_sense_ns=20)
        await h.send("pred", {"class": 0, "label": "a"}, t_sense_ns=30)
        await h.send("label", 1, t_sense_ns=30)
        await h.send("pred", {"class": 0, "label": "a"}, t_sense_ns=40)
        await h.send("label", -1, t_sense_ns=40)  # unlabelled: not scored
        await h.send("pred", {"class": 0, "label": "a"}, t_sense_ns=50)
        await h.send("label", "a", t_sense_ns=50)  # a class name compares with the predicted name
        await h.send("cost", cost)
        await h.send("cost", {**cost, "total": {"energy_pj": 4000.0, "latency_ns": 1000.0}})
    c = h.ctx.counters
    assert (c["scored"], c["correct"], c["unlabelled"]) == (4, 3, 1)
    assert c["accuracy"] == pytest.approx(0.75)
    assert h.payloads("accuracy") == pytest.approx([1.0, 1.0, 2 / 3, 0.75])
    assert c["energy_nj_per_inference"] == pytest.approx(3.0)
    assert c["latency_us_per_inference"] == pytest.approx(2.0)
    assert "75.0 % (3/4)" in h.node.report() and "'loas': 3 nJ and 2 µs" in h.node.report()
    async with NodeHarness(AccuracySink) as h:
        await h.send("cost", {"backend": "ideal", "total": {"energy_pj": 0.0, "latency_ns": 0.0}})
        await h.send("pred", "not a prediction")
    assert h.ctx.counters["ignored"] == 1
    assert h.node.report() == "accuracy: nothing scored yet; backend 'ideal' has no cost model"


@pytest.mark.timeout(150)
async def test_demo_graph_scores_above_chance_with_chip_costs(tiny_model: Path) -> None:
    sets = [
        f"classify.model={tiny_model}",
        "camera.duration_us=16000000",  # 16 gestures
        "camera.speed=0",  # as fast as the CPU allows
    ]
    graph = load_graph(EXAMPLES / "demo.yaml", sets)
    launcher = Launcher(graph, overrides=sets, startup_timeout_s=100)
    result = await asyncio.wait_for(launcher.run(None), timeout=140)  # the graph ends by itself
    assert result.exit_code == 0, result.failures
    score = result.view["nodes"]["score"]["counters"]
    assert score["scored"] == 16
    assert score["accuracy"] > 0.4  # 4 classes: chance is 0.25
    assert score["inferences_costed"] == 16
    assert score["energy_nj_per_inference"] > 0 and score["latency_us_per_inference"] > 0
    assert result.view["nodes"]["motor"]["counters"]["commands"] > 0


@pytest.mark.timeout(60)
async def test_minimal_example_still_runs() -> None:
    graph = load_graph(EXAMPLES / "minimal.yaml")
    launcher = Launcher(graph, startup_timeout_s=40)
    result = await asyncio.wait_for(launcher.run(1.5), timeout=50)
    assert result.exit_code == 0, result.failures
    assert result.view["nodes"]["motor"]["counters"]["commands"] > 0
    assert result.view["nodes"]["monitor"]["counters"]["received"] > 0
