"""onnxruntime's weight-only GPTQ reads the calibration data, equals its RTN as shipped, beats it once fixed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.quant import QuantSpec, gptq
from models.quant.ort_gptq import dequantized_weight, ort_weight_only
from models.quant.reference import reference_fasterquant

pytestmark = pytest.mark.usefixtures("torch_one_thread")

K, N = 256, 24  # K / 128 even: ORT packs zero points per row pair otherwise


@pytest.fixture(scope="module")
def layer() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(20)
    x = (rng.standard_normal((384, K)) @ rng.standard_normal((K, K)) * rng.random(K)).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    out = {}
    for name, kw in {
        "rtn": {"method": "rtn"},
        "gptq": {"method": "gptq"},
        "gptq-fixed": {"method": "gptq", "fix_gptq_indexing": True},
    }.items():
        res = ort_weight_only(w, x, **kw)  # type: ignore[arg-type]
        if name != "rtn":
            # the GPTQ path really ran on our data: its config, its log and every calibration batch read
            assert res.algorithm == "GPTQ" and res.batches_read == 6
            assert any("GPTQ algorithm" in line for line in res.log)
        out[name] = dequantized_weight(res.model, K)
    return x, w, out


def _err(x: np.ndarray, w: np.ndarray, wq: np.ndarray) -> float:
    return float(np.linalg.norm(x @ wq - x @ w) / np.linalg.norm(x @ w))


def test_ort_gptq_as_shipped_is_its_rtn(layer: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]) -> None:
    """SCIENCE 4.8.3: Hinv1[i:, i] of an upper factor is zero below the diagonal, so nothing propagates.

    If this starts failing, onnxruntime has fixed its GPTQ: drop the fix in `ort_gptq` and re-run the bench.
    """
    _, _, out = layer
    assert np.allclose(out["gptq"], out["rtn"], rtol=0, atol=1e-5)


def test_ort_gptq_with_the_indexing_fixed_is_gptq(
    layer: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]],
) -> None:
    x, w, out = layer
    e_rtn, e_fixed = _err(x, w, out["rtn"]), _err(x, w, out["gptq-fixed"])
    assert e_fixed <= 0.9 * e_rtn, f"fixed ORT GPTQ {e_fixed:.4f} vs its RTN {e_rtn:.4f}"
    xd = torch.from_numpy(x).double()
    h = 2 * xd.T @ xd / len(xd)
    q_ref, _ = reference_fasterquant(torch.from_numpy(w.T).double(), h, 4, groupsize=128)
    ours = gptq(torch.from_numpy(w.T).double(), h, QuantSpec(4, 128)).dequant().numpy().T
    assert np.allclose(ours, q_ref.numpy().T, atol=1e-12)
    # ORT re-fits each group's min/max on the GPTQ output before packing, so it is close to, not equal to,
    # the reference; ours is the reference, and at most 5 % worse than ORT's (the bench target)
    e_ours = _err(x, w, ours)
    assert e_ours <= 1.05 * e_fixed
    assert np.mean(np.isclose(out["gptq-fixed"], q_ref.numpy().T, atol=1e-5)) > 0.7
