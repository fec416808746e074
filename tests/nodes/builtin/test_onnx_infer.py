"""onnx.infer: plain, int8 QDQ and 4-bit MatMulNBits models; one-step SNNs keep membranes between messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.mlp import MLP
from models.onnx_export import export_onnx, export_snn_step
from models.quant import QuantConfig, QuantSpec, quantize_model
from models.quant.nbits import gemm_to_nbits
from models.quant.ort import quantize_int8_static
from models.snn import SpikingMLP
from nodes.builtin.inference import OnnxInfer
from runtime.errors import GraphError
from runtime.testing import NodeHarness


async def test_snn_step_model_keeps_state_and_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SpikingMLP([6, 16, 3])
    x = torch.rand(12, 1, 6) * 1.5
    export_snn_step(net, tmp_path / "s.onnx", x[0])
    with torch.no_grad():
        ref = net(x, record=True)
    async with NodeHarness(OnnxInfer, {"model": str(tmp_path / "s.onnx"), "reset_every": 12}) as h:
        for t in range(12):
            await h.send("x", x[t, 0].numpy())  # one unbatched sample per step
        await h.send("reset", None)
        await h.send("x", x[0, 0].numpy())
    spikes = np.array(h.payloads("spikes"))[:12, 0]
    np.testing.assert_array_equal(spikes, ref.records[0].spikes.sum((1, 2)).numpy())
    assert spikes.sum() > 0
    (logits,) = h.payloads("logits")
    np.testing.assert_allclose(logits, ref.logits[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(h.payloads("y")[12], h.payloads("y")[0], atol=1e-6)  # reset → rest again


async def test_plain_int8_and_4bit_models(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mlp = MLP([16, 32, 4]).eval()
    calib = torch.randn(64, 16)
    export_onnx(mlp, tmp_path / "fp.onnx", calib[:1])
    quantize_int8_static(
        tmp_path / "fp.onnx",
        tmp_path / "int8.onnx",
        [{"x": calib[i : i + 8].numpy()} for i in range(0, 64, 8)],
    )
    q = MLP([16, 32, 4]).eval()
    q.load_state_dict(mlp.state_dict())
    res = quantize_model(q, calib, QuantConfig("gptq", QuantSpec(4, 16)))
    assert gemm_to_nbits(tmp_path / "fp.onnx", res.layers, tmp_path / "w4.onnx") == ["net.0", "net.2"]
    x = calib[:5].numpy()
    ref = mlp(calib[:5]).detach().numpy()
    for name, tol in (("fp.onnx", 1e-5), ("int8.onnx", 0.1), ("w4.onnx", 1e-5)):  # relative L2 error
        async with NodeHarness(OnnxInfer, {"model": str(tmp_path / name), "intra_op_threads": 2}) as h:
            await h.send("x", x)
            await h.send("x", x[0])
        y, y0 = h.payloads("y")
        assert y.shape == (5, 4) and y0.shape == (4,)
        expect = q(calib[:5]).detach().numpy() if name == "w4.onnx" else ref
        assert np.linalg.norm(y - expect) <= tol * np.linalg.norm(expect), name
        assert h.payloads("spikes") == []


async def test_missing_model_is_a_graph_error(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="does not exist"):
        async with NodeHarness(OnnxInfer, {"model": str(tmp_path / "none.onnx")}):
            pass
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(GraphError, match="cannot load"):
        async with NodeHarness(OnnxInfer, {"model": str(tmp_path / "bad.onnx")}):
            pass
