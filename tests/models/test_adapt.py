"""On-device learning rules: BPTT over crossbar reads equals autograd, DFA follows its equations, layer ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.adapt import BPTT, DFA, AdaptError, LayerOps, NetView, forward_trace, output_error
from models.snn import SpikingConvNet, SpikingMLP, SpikingNet
from sim_hw import make_backend

QUIET = {
    "prog_noise": 0.0,
    "read_noise": 0.0,
    "drift_nu": 0.0,
    "drift_nu_std": 0.0,
    "adc_bits": 0,
    "dac_bits": 0,
    "weight_bits": 16,
    "bits_per_cell": 8,
    "update_noise": 0.0,
}


pytestmark = pytest.mark.usefixtures("torch_one_thread_module")


def _nets() -> list[tuple[SpikingNet, torch.Tensor]]:
    torch.manual_seed(0)
    return [
        (SpikingMLP([10, 32, 24, 5], beta=0.8), 2 * torch.rand(6, 3, 10)),
        (SpikingMLP([10, 32, 5], beta=0.8, reset="zero"), 2 * torch.rand(6, 3, 10)),
        (
            SpikingConvNet(3, 5, input_size=16, dims=1, channels=(4, 6), kernel_size=3, pool=2, hidden=7),
            2 * torch.rand(4, 2, 3, 16),
        ),
    ]


@pytest.mark.parametrize("case", [0, 1, 2], ids=["mlp-subtract", "mlp-zero-reset", "conv-pool-fc"])
def test_bptt_over_transposed_reads_equals_autograd(case: int) -> None:
    net, x = _nets()[case]
    y = torch.randint(0, 5, (x.shape[1],), generator=torch.Generator().manual_seed(case))
    out = net(x)
    F.cross_entropy(out.logits, y, reduction="sum").backward()
    view = NetView(make_backend("ideal").prepare(net))
    trace = forward_trace(view, x)
    torch.testing.assert_close(trace.logits, out.logits.detach())
    grads, _ = BPTT(view, 5, list(range(len(view.layers)))).gradients(trace, output_error(trace.logits, y))
    assert grads.order[0] == "readout" and grads.order[-1] == "layers.0.synapse"
    for i, layer in enumerate(net.layers):
        dw, db = grads.grads[f"layers.{i}.synapse"]
        torch.testing.assert_close(dw, layer.synapse.weight.grad.reshape(dw.shape), atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(db, layer.synapse.bias.grad, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(grads.grads["readout"][0], net.readout.weight.grad, atol=1e-6, rtol=1e-4)


def test_dfa_follows_its_equations_and_feedback_is_fixed_per_layer() -> None:
    net, x = _nets()[0]
    view = NetView(make_backend("ideal").prepare(net))
    trace = forward_trace(view, x)
    y = torch.tensor([0, 3, 4])
    e = output_error(trace.logits, y)
    torch.testing.assert_close(e.sum(1), torch.zeros(3), atol=1e-6, rtol=0)
    rule = DFA(view, 5, [0, 1], feedback="full", scale=0.5, seed=3)
    grads, cost = rule.gradients(trace, e)
    t = trace.timesteps
    rec = trace.records[1]
    b = rule.B[1]
    assert b.shape == (24, 5) and set(b.unique().tolist()) == {-0.5, 0.5}
    delta = (e @ b.t() / t).unsqueeze(0) * view.surrogate(1, rec.membrane)
    expect = torch.einsum("tbm,tbk->mk", delta, rec.input)
    torch.testing.assert_close(grads.grads["layers.1.synapse"][0], expect, atol=1e-6, rtol=1e-5)
    # the readout gets its true gradient, as in BP
    bp, _ = BPTT(view, 5, [0, 1]).gradients(trace, e)
    torch.testing.assert_close(grads.grads["readout"][0], bp.grads["readout"][0])
    # one MVM on the shared feedback crossbar (C rows × 32 + 24 columns), costed in the learning phase
    assert [(c.name, c.phase, c.macs) for c in cost.layers] == [
        ("dfa.feedback", "learning", 3 * 5 * (32 + 24))
    ]
    # the same seed rebuilds the same matrices, whichever layers are adapted (offline and online agree)
    again = DFA(view, 5, [1], feedback="full", scale=0.5, seed=3)
    again.gradients(trace, e)
    assert torch.equal(again.B[1], b)
    assert not torch.equal(DFA(view, 5, [1], feedback="full", scale=0.5, seed=4)._matrix(1, (24,)), b)


def test_channel_feedback_is_shared_over_positions() -> None:
    net, x = _nets()[2]
    view = NetView(make_backend("ideal").prepare(net))
    trace = forward_trace(view, x)
    rule = DFA(view, 5, [0, 1, 2])
    rule.gradients(trace, output_error(trace.logits, torch.tensor([1, 2])))
    assert rule.feedback_shapes() == [(5, 4), (5, 6), (5, 7)]  # conv: one row per channel; fc: per neuron
    with pytest.raises(AdaptError, match="feedback"):
        DFA(view, 5, [0], feedback="sparse")


@pytest.mark.parametrize("conv", [False, True], ids=["linear", "conv1d"])
def test_layer_ops_on_a_quiet_crossbar_match_float(conv: bool) -> None:
    torch.manual_seed(1)
    mod = nn.Conv1d(3, 5, 3, padding=1) if conv else nn.Linear(12, 5)
    x = torch.randn(2, 3, 8) if conv else torch.randn(4, 12)
    hw = make_backend("rram", **QUIET).prepare(mod)
    ops, ref = LayerOps(hw.layer("layer")), LayerOps(mod, "float")
    g = torch.randn_like(mod(x))
    xr = x.clone().requires_grad_(True)
    (mod(xr) * g).sum().backward()
    torch.testing.assert_close(ref.weight_grad(x, g), mod.weight.grad.reshape(5, -1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref.transposed(g, x), xr.grad, atol=1e-5, rtol=1e-5)
    back = ops.transposed(g, x)
    assert back.shape == x.shape
    assert float((back - xr.grad).norm() / xr.grad.norm()) < 1e-3
    assert hw.cost().layer("layer.T", "learning").macs > 0
    w0 = ops.weight().clone()
    dw = torch.zeros(5, ops.in_features)
    k = int(w0[0].abs().argmin())  # far from the channel's full scale: the step cannot saturate
    dw[0, k] = 0.05
    cost = ops.program(dw, torch.ones(5))
    assert cost.layers[0].phase == "learning" and cost.total_energy_pj > 0
    moved = ops.weight() - w0
    assert float(moved[0, k]) == pytest.approx(0.05, abs=1e-3)
    assert float(moved.abs().sum() - moved[0, k].abs()) < 1e-3
    torch.testing.assert_close(hw.layer("layer").bias, mod.bias.detach() + 1)


def test_unsupported_backends_and_models_are_refused() -> None:
    with pytest.raises(AdaptError, match="rram"):
        NetView(make_backend("loas").prepare(SpikingMLP([4, 8, 2])))
    with pytest.raises(AdaptError, match="SpikingNet"):
        NetView(make_backend("ideal").prepare(nn.Linear(3, 2)))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's own copy
@pytest.mark.parametrize(
    "mod",
    [
        nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2),
        nn.Conv1d(2, 3, 4, padding="same"),
        nn.Linear(6, 3),
    ],
    ids=["conv2d-stride-dilation", "conv1d-same-even-kernel", "linear"],
)
def test_layer_ops_gradients_match_autograd_on_the_ideal_backend(mod: nn.Module) -> None:
    torch.manual_seed(3)
    x = torch.randn(2, 3, 9, 8) if isinstance(mod, nn.Conv2d) else torch.randn(2, 2, 11)
    x = torch.randn(5, 6) if isinstance(mod, nn.Linear) else x
    hw = make_backend("ideal").prepare(mod)
    ops = LayerOps(hw.layer("layer"))
    g = torch.randn_like(mod(x))
    xr = x.clone().requires_grad_(True)
    (mod(xr) * g).sum().backward()
    torch.testing.assert_close(ops.weight_grad(x, g), mod.weight.grad.reshape(ops.out_features, -1))
    torch.testing.assert_close(ops.bias_grad(g), mod.bias.grad)
    torch.testing.assert_close(ops.transposed(g, x), xr.grad)
    before = hw.layer("layer").read_weights()
    ops.program(torch.ones(ops.out_features, ops.in_features), None)
    torch.testing.assert_close(ops.weight(), before.reshape(ops.out_features, -1) + 1)


def test_grouped_convs_are_refused_by_layer_ops() -> None:
    with pytest.raises(AdaptError, match="groups=2"):
        LayerOps(nn.Conv1d(4, 4, 3, groups=2), "dw")
    with pytest.raises(AdaptError, match="padding_mode='reflect'"):
        LayerOps(
            make_backend("ideal")
            .prepare(nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect"))
            .layer("layer")
        )
