"""TesseraQ's reference recipe, switch by switch: auto blocks, scale parametrisation, mini-batches, AWQ clip."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from models.event2vec import Event2Vec
from models.mlp import MLP
from models.quant import (
    QuantConfig,
    QuantError,
    QuantSpec,
    TesseraQConfig,
    auto_blocks,
    awq_clip,
    quantizable_layers,
    quantize_model,
    rtn_layer,
)
from models.quant.tesseraq import SoftRounding, _RowSampler
from models.quant.testbed import make_testbed, relative_logit_error

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_auto_blocks() -> None:
    mlp = MLP([8, 16, 16, 4])
    assert auto_blocks(mlp, quantizable_layers(mlp)) == ("net",)
    e2v = Event2Vec(16, 16, 3, dim=8, ffn=16, layers=2)
    # the encoder layers (a ModuleList); the time projection and the head stay single layers
    assert auto_blocks(e2v, quantizable_layers(e2v)) == ("blocks.0", "blocks.1")
    single = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert auto_blocks(single, quantizable_layers(single)) == ()


class _Accumulator(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.v is None or self.v.shape != x.shape else x + self.v
        self.v = y.detach()
        return y


def test_auto_blocks_that_keep_state_go_layer_by_layer() -> None:
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), _Accumulator())
    model = torch.nn.Sequential(body, torch.nn.Linear(8, 4))
    x = torch.randn(32, 8)
    assert auto_blocks(model, quantizable_layers(model)) == ("0",)
    res = quantize_model(model, [x, x], QuantConfig("tesseraq", tesseraq=TesseraQConfig(steps_per_round=2)))
    assert set(res.layers) == {"0.0", "0.2", "1"}
    with pytest.raises(QuantError, match="keeps state"):
        quantize_model(copy.deepcopy(model), [x, x], QuantConfig("tesseraq", blocks=("0",)))


def test_default_is_block_reconstruction_on_an_mlp() -> None:
    tb = make_testbed(7, hidden=32, depth=2, n_cal=128, n_test=300, n_train=400, steps=60)
    tq = TesseraQConfig(steps_per_round=5)
    errs = {}
    for blocks in ("auto", ("net",), ()):
        q = copy.deepcopy(tb.model)
        quantize_model(q, tb.x_cal, QuantConfig("tesseraq", QuantSpec(3), tesseraq=tq, blocks=blocks))
        errs[str(blocks)] = relative_logit_error(q, tb.model, tb.x_test)
    assert errs["auto"] == errs[str(("net",))] != errs["()"]
    assert QuantConfig("gptq").to_dict()["blocks"] == "auto"  # ignored by the other methods
    with pytest.raises(QuantError, match="'auto'"):
        QuantConfig("tesseraq", blocks="all")


def test_scale_factors() -> None:
    w = torch.randn(4, 8, dtype=torch.float64)
    u = torch.tensor([[-10.0], [0.0], [0.3], [10.0]], dtype=torch.float64)
    rect = SoftRounding(w, QuantSpec(3), TesseraQConfig()).factor(u).flatten()
    sig = SoftRounding(w, QuantSpec(3), TesseraQConfig(scale_param="sigmoid")).factor(u).flatten()
    # both start at 1; the reference's rectified sigmoid reaches 0 and 2 exactly, 2σ(u) only tends to them
    assert rect[1] == sig[1] == 1.0
    assert rect[0] == 0.0 and rect[3] == 2.0 and 0 < sig[0] and sig[3] < 2
    assert torch.isclose(rect[2], 2 * (1.2 * torch.sigmoid(u[2, 0]) - 0.1))
    with pytest.raises(QuantError, match="scale_param"):
        TesseraQConfig(scale_param="exp")


def test_row_sampler_draws_matching_rows() -> None:
    a = torch.arange(10.0)[:, None].repeat(1, 3)
    b = torch.arange(10.0, 16.0)[:, None].repeat(1, 3)
    sampler = _RowSampler([(a, 2.0), (b, 2.0)], [a * 2, b * 2], 5, seed=0)
    drawn = sampler.draw()
    assert sum(len(y) for _, y in drawn) == 5
    for (x, k), y in drawn:
        assert k == 2.0 and torch.equal(x * 2, y)
    assert len(_RowSampler([(a,), (b,)], [a, b], None, 0).draw()) == 2
    with pytest.raises(QuantError, match="batch_size=None"):
        _RowSampler([(a[:3],)], [a], 4, 0)


def test_awq_clip_lowers_the_output_error() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(16, 32, generator=g, dtype=torch.float64)
    w[:, 0] *= 8  # an outlier column: min-max wastes levels on it
    x = torch.randn(500, 32, generator=g, dtype=torch.float64)
    a = x.T @ x / len(x)
    spec = QuantSpec(3, 16)
    clip = awq_clip(w, a, spec)
    assert clip.shape == (16, 2)
    amax = torch.stack([w[:, :16].abs().amax(1), w[:, 16:].abs().amax(1)], 1)
    assert (clip <= amax).all() and (clip < amax).any() and (clip >= 0.5 * amax).all()

    def err(sr: SoftRounding) -> float:
        return float((x @ sr.result().dequant().T - x @ w.T).norm())

    minmax, clipped = TesseraQConfig(init="minmax"), TesseraQConfig()
    e_minmax, e_clip = err(SoftRounding(w, spec, minmax)), err(SoftRounding(w, spec, clipped, clip))
    assert e_minmax == pytest.approx(float((x @ rtn_layer(w, spec).dequant().T - x @ w.T).norm()))
    assert e_clip < e_minmax


SWITCHES = {
    "per_layer_quantile": {"per_layer_quantile": False},
    "fresh_optimizer": {"fresh_optimizer": False},
    "scale_param": {"scale_param": "sigmoid"},
    "batch_size": {"batch_size": None},
    "init": {"init": "minmax"},
}


@pytest.fixture(scope="module")
def small_testbed() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    tb = make_testbed(8, hidden=32, depth=2, n_cal=128, n_test=300, n_train=400, steps=60)
    return tb.model, tb.x_cal, tb.x_test


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_each_switch_changes_the_result(
    switch: str, small_testbed: tuple[torch.nn.Module, torch.Tensor, torch.Tensor]
) -> None:
    model, x_cal, x_test = small_testbed
    base = TesseraQConfig(steps_per_round=4)
    out = {}
    for name, cfg in (("default", base), (switch, replace(base, **SWITCHES[switch]))):  # type: ignore[arg-type]
        q = copy.deepcopy(model)
        res = quantize_model(q, x_cal, QuantConfig("tesseraq", QuantSpec(3), tesseraq=cfg))
        out[name] = (
            torch.cat([lq.qweight.flatten() for lq in res.layers.values()]),
            relative_logit_error(q, model, x_test),
        )
    assert not torch.equal(out["default"][0], out[switch][0]), f"{switch} changed nothing"
    r = copy.deepcopy(model)
    quantize_model(r, x_cal, QuantConfig("rtn", QuantSpec(3)))
    assert out[switch][1] < relative_logit_error(r, model, x_test)
