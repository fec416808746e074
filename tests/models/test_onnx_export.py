"""One-step SNN ONNX export: onnxruntime matches torch spike-for-spike in fp32 over 30 steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from models.mlp import MLP
from models.onnx_export import export_onnx, export_snn_step, read_snn_step_spec
from models.snn import SpikingConvNet, SpikingMLP, SpikingNet


def _compare(net: SpikingNet, x: torch.Tensor, path: Path) -> int:
    with torch.no_grad():
        ref = net(x, record=True)
    spec = export_snn_step(net, path, x[0])
    assert read_snn_step_spec(onnx.load(str(path))) == spec
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    b = x.shape[1]
    v = [np.zeros((b, *s[1:]), np.float32) for s in spec.state_shapes]
    total = np.zeros_like(ref.logits.numpy())
    n = len(v)
    spikes_seen = 0
    for t in range(x.shape[0]):
        res = sess.run(None, {"x": x[t].numpy(), **dict(zip(spec.state_inputs, v, strict=True))})
        total += res[0]
        for i in range(n):
            np.testing.assert_array_equal(
                res[1 + i], ref.records[i].spikes[t].numpy(), err_msg=f"layer {i} step {t}"
            )
            vp, sp = ref.records[i].membrane[t].numpy(), res[1 + i]
            lif = net.layers[i].lif
            v_ref = vp - sp * float(lif.v_th) if lif.reset == "subtract" else vp * (1 - sp)
            np.testing.assert_allclose(res[1 + n + i], v_ref, atol=1e-5)
            spikes_seen += int(res[1 + i].sum())
        v = res[1 + n :]
    np.testing.assert_allclose(total / x.shape[0], ref.logits.numpy(), atol=1e-5)
    return spikes_seen


def test_spiking_mlp_onnx_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SpikingMLP([20, 64, 32, 5], beta=0.85, learn_beta=True)
    x = torch.rand(30, 4, 20)
    assert _compare(net, x, tmp_path / "mlp.onnx") > 100  # the comparison is not vacuous


def test_spiking_convnet_onnx_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = SpikingConvNet(2, 4, input_size=(16, 16), dims=2, channels=(4, 8), hidden=16, reset="zero")
    with torch.no_grad():
        for m in net.layers:
            m.synapse.weight.mul_(3.0)
    x = (torch.rand(26, 2, 2, 16, 16) > 0.7).float()
    assert _compare(net, x, tmp_path / "conv.onnx") > 100


def test_plain_export_dynamic_batch(tmp_path: Path) -> None:
    mlp = MLP([8, 16, 3]).eval()
    export_onnx(mlp, tmp_path / "m.onnx", torch.zeros(1, 8))
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], mlp(torch.from_numpy(x)).detach().numpy(), atol=1e-5
    )
    assert read_snn_step_spec(onnx.load(str(tmp_path / "m.onnx"))) is None
