"""ProgrammableLayer: RRAM and ideal layers implement it; the ideal one is exact float maths at zero cost;
HardwareModel.capture() collects the cost of any block of work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sim_hw.backend import Capture
from sim_hw.cost import CostReport, LayerCost
from sim_hw.errors import HardwareStateError
from sim_hw.geometry import ConvGeometry
from sim_hw.ideal import IdealLayer
from sim_hw.loas.config import LoASConfig
from sim_hw.loas.layer import LoASLayer
from sim_hw.programmable import ProgrammableLayer
from sim_hw.registry import make_backend
from sim_hw.rram.config import RRAMConfig
from sim_hw.rram.layer import RRAMLayer


@pytest.mark.parametrize("module", [nn.Linear(12, 5), nn.Conv1d(3, 5, 3, padding=1), nn.Conv2d(2, 4, 3)])
def test_rram_and_ideal_layers_are_programmable(module: nn.Module) -> None:
    for layer in (RRAMLayer(module, "l", RRAMConfig()), IdealLayer(module, "l")):
        assert isinstance(layer, ProgrammableLayer)
        assert layer.geometry == ConvGeometry.of(module)
        assert (layer.out_features, layer.in_features) == (module.weight.shape[0], module.weight[0].numel())
        assert layer.read_weights().shape == module.weight.shape
    assert not isinstance(
        LoASLayer(nn.Linear(4, 2), "l", LoASConfig()), ProgrammableLayer
    )  # no transposed read


def test_ideal_transposed_read_is_exact_and_costs_macs_only() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3)
    layer = IdealLayer(conv, "c")
    w = conv.weight.detach().reshape(6, -1)  # W [M, K]
    e = torch.randn(40, 6)
    back = layer.mvm_transposed(e)
    assert torch.equal(back, e @ w)  # e·W, i.e. Wᵀ·eᵀ per row, bit for bit
    torch.testing.assert_close(back, (w.t() @ e.t()).t(), rtol=0, atol=1e-6)
    cost = layer.cost().layer("c.T", "learning")
    assert cost.macs == 40 * 6 * 27 and cost.energy_total_pj == 0.0
    with pytest.raises(HardwareStateError, match="needs 6 features, got 5"):
        layer.mvm_transposed(torch.zeros(2, 5))


def test_ideal_program_update_adds_to_the_float_weights() -> None:
    torch.manual_seed(1)
    lin = nn.Linear(8, 3)
    layer = IdealLayer(lin, "fc")
    before = lin.weight.detach().clone()
    dw = torch.randn(3, 8)
    report = layer.program_update(dw)
    assert torch.equal(lin.weight.detach(), before + dw)  # the module itself learns
    assert torch.equal(layer.read_weights(), lin.weight.detach())
    assert layer.bias is lin.bias
    (entry,) = report.layers
    assert (entry.name, entry.phase, entry.energy_total_pj, entry.latency_ns) == ("fc", "learning", 0.0, 0.0)
    assert entry.counts["weights_written"] == 24
    assert layer.cost().layer("fc", "learning").counts["weights_written"] == 24


def test_capture_collects_one_block_and_nests() -> None:
    hw = make_backend("rram", prog_noise=0.0).prepare(
        nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    )
    x = torch.rand(5, 16)
    y, run_cost = hw.run(x)
    with hw.capture() as outer:
        assert isinstance(outer, Capture) and len(outer.cost) == 0  # filled when the block exits
        with torch.no_grad():
            assert hw(x).shape == y.shape == (5, 4)  # one more forward, noisy reads
        with hw.capture() as inner:
            hw.layer("0").program_update(torch.full((8, 16), 0.05))
            hw.add_cost(CostReport([LayerCost("feedback", "learning", macs=7)]))
    # the outer block saw the forward, the write and the charge; the inner one only the last two
    assert {(c.name, c.phase) for c in inner.cost.layers} == {("0", "learning"), ("feedback", "learning")}
    assert (
        outer.cost.layer("0", "learning").energy_total_pj == inner.cost.layer("0", "learning").energy_total_pj
    )
    assert outer.cost.layer("0").macs == run_cost.layer("0").macs == 5 * 16 * 8
    assert outer.cost.layer("feedback", "learning").macs == 7 and outer.cost.backend == "rram"
    # and the model's running total has everything once
    total = hw.cost()
    assert total.layer("0").calls == 2 and total.layer("feedback", "learning").macs == 7


def test_capture_closes_on_error_and_run_is_a_capture() -> None:
    hw = make_backend("ideal").prepare(nn.Linear(4, 2))
    with pytest.raises(RuntimeError), hw.capture() as cap:
        hw(torch.ones(3, 4))
        raise RuntimeError("stop")
    assert cap.cost.layer("layer").macs == 3 * 4 * 2  # what ran before the error is still costed
    _, cost = hw.run(torch.ones(1, 4))
    assert cost.layer("layer").macs == 4 * 2  # the failed block's span was closed
