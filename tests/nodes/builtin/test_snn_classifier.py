"""snn.classifier: model file + backend → logits, prediction, spike counts and cost per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.adapt.har import HarInput
from models.io import save_model
from models.snn import SpikingConvNet, SpikingMLP
from nodes.builtin.inference import SnnClassifier
from runtime.errors import GraphError
from runtime.testing import NodeHarness


@pytest.fixture
def har_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = SpikingConvNet(6, 3, input_size=32, dims=1, channels=(4,), kernel_size=5, pool=4)
    windows = np.random.default_rng(0).standard_normal((20, 32, 6)).astype(np.float32)
    meta = {"har_input": HarInput.fit(windows, timesteps=3).to_meta(), "label_names": ["a", "b", "c"]}
    return save_model(net, tmp_path / "har.pt", meta)


async def test_classifies_windows_on_ideal_backend(har_model: Path) -> None:
    window = np.random.default_rng(1).standard_normal((32, 6)).astype(np.float32) * 3
    async with NodeHarness(SnnClassifier, {"model": str(har_model)}) as h:
        await h.send("x", window)
        await h.send("x", window)
    logits = h.payloads("logits")
    assert len(logits) == 2 and logits[0].shape == (3,) and logits[0].dtype == np.float32
    np.testing.assert_array_equal(logits[0], logits[1])  # membranes start at rest for every sample
    pred = h.payloads("pred")[0]
    assert pred["class"] == int(np.argmax(logits[0])) and pred["label"] in ("a", "b", "c")
    spikes = h.payloads("spikes")[0]
    assert spikes.shape == (1,) and spikes[0] >= 0
    cost = h.payloads("cost")[0]
    assert cost["backend"] == "ideal" and cost["total"]["macs"] > 0


async def test_rram_backend_reports_energy(har_model: Path) -> None:
    window = np.random.default_rng(2).standard_normal((32, 6)).astype(np.float32)
    async with NodeHarness(SnnClassifier, {"model": str(har_model), "backend": "rram:adc_bits=6"}) as h:
        await h.send("x", window)
    cost = h.payloads("cost")[0]
    assert cost["backend"] == "rram"
    assert sum(layer["energy_total_pj"] for layer in cost["layers"]) > 0


async def test_encoder_meta_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_model(SpikingMLP([4, 8, 2]), tmp_path / "m.pt", {"encoder": {"kind": "rate", "timesteps": 5}})
    async with NodeHarness(SnnClassifier, {"model": str(path)}) as h:
        await h.send("x", np.ones(4, np.float32))
    assert h.payloads("logits")[0].shape == (2,)


async def test_bad_params_are_graph_errors(har_model: Path, tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="backend"):
        async with NodeHarness(SnnClassifier, {"model": str(har_model), "backend": "tpu"}):
            pass
    with pytest.raises(GraphError, match="does not exist"):
        async with NodeHarness(SnnClassifier, {"model": str(tmp_path / "nope.pt")}):
            pass
