"""LIF step semantics, surrogates, encoders, spiking networks, BPTT training and pruning."""

from __future__ import annotations

import math

import pytest
import torch

from models.snn import (
    LIF,
    Encoder,
    LIFParameters,
    LIFState,
    Pruner,
    SpikingConvNet,
    SpikingMLP,
    atan,
    fast_sigmoid,
    gradual_sparsity,
    latency_encode,
    lif_step,
    rate_encode,
    weight_sparsity,
)
from models.train import TrainConfig, evaluate, fit

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_lif_subtract_and_zero_reset() -> None:
    x = torch.tensor([0.6, 0.6, 1.5])
    st = LIFState(torch.tensor([0.0, 0.5, 0.0]))
    s, new = lif_step(x, st, LIFParameters(beta=0.5, v_th=1.0, reset="subtract"))
    assert s.tolist() == [0.0, 0.0, 1.0]
    assert torch.allclose(new.v, torch.tensor([0.6, 0.85, 0.5]))
    s, new = lif_step(x, st, LIFParameters(beta=0.5, v_th=1.0, reset="zero"))
    assert s.tolist() == [0.0, 0.0, 1.0]
    assert torch.allclose(new.v, torch.tensor([0.6, 0.85, 0.0]))


def test_lif_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="reset"):
        LIF(reset="hard")
    with pytest.raises(ValueError, match="surrogate"):
        LIF(surrogate="sigmoidal")
    with pytest.raises(ValueError, match="beta"):
        LIF(beta=1.5)


def test_surrogate_gradients() -> None:
    v = torch.zeros(3, requires_grad=True)
    atan(v, 2.0).sum().backward()
    assert torch.allclose(v.grad, torch.full((3,), 1.0))  # (α/2)/(1+0) = 1 at v = 0
    v = torch.tensor([0.0, 0.1], requires_grad=True)
    fast_sigmoid(v, 25.0).sum().backward()
    assert torch.allclose(v.grad, torch.tensor([1.0, 1 / (2.5 + 1) ** 2]))
    assert atan(torch.tensor([-0.1, 0.1])).tolist() == [0.0, 1.0]


def test_learnable_beta_gets_gradient() -> None:
    lif = LIF(beta=0.8, learn_beta=True)
    state = lif.init_state(torch.zeros(4, 3))
    total = torch.zeros(())
    for _ in range(5):
        s, state = lif(torch.full((4, 3), 0.4), state)
        total = total + s.sum() + state.v.sum()
    total.backward()
    assert lif.beta.grad is not None and lif.beta.grad.abs().item() > 0


def test_encoders() -> None:
    x = torch.tensor([[0.0, 0.5, 1.0]])
    g = torch.Generator().manual_seed(0)
    r = rate_encode(x.expand(2000, 3), 10, generator=g)
    assert r.shape == (10, 2000, 3)
    assert r[..., 0].sum() == 0 and r[..., 2].mean() == 1.0 and abs(r[..., 1].mean().item() - 0.5) < 0.02
    lat = latency_encode(x, 20)
    assert lat.shape == (20, 1, 3)
    assert lat[:, 0, 0].sum() == 0 and lat[:, 0, 1].sum() == 1 and lat[:, 0, 2].sum() == 1
    assert lat[:, 0, 2].argmax() < lat[:, 0, 1].argmax()  # brighter fires earlier
    assert Encoder("direct", 4)(x).shape == (4, 1, 3)
    assert Encoder.from_dict(Encoder("rate", 5).to_dict()) == Encoder("rate", 5)
    with pytest.raises(ValueError, match="kind"):
        Encoder("phase")


def test_mlp_records_and_counts() -> None:
    torch.manual_seed(0)
    net = SpikingMLP([10, 32, 16, 3])
    x = torch.rand(7, 5, 10) * 2
    plain, rec = net(x), net(x, record=True)
    assert plain.records == () and len(rec.records) == 2
    assert torch.equal(plain.logits, rec.logits)
    r0, r1 = rec.records
    assert r0.input.shape == (7, 5, 10) and r0.membrane.shape == (7, 5, 32) and r0.spikes.shape == (7, 5, 32)
    assert torch.equal(r1.input, r0.spikes)  # layer 2 sees layer 1's spikes
    assert torch.equal(rec.spike_counts[0], r0.spikes.sum(0))
    assert torch.equal(r0.spikes, (r0.membrane > 1.0).float())
    with pytest.raises(ValueError, match=r"\[T >= 1, B"):
        net(torch.rand(5, 10))


def test_convnet_shapes_1d_and_2d() -> None:
    net1 = SpikingConvNet(6, 5, input_size=64, dims=1, channels=(8, 16), hidden=32)
    out = net1(torch.rand(4, 3, 6, 64), record=True)
    assert out.logits.shape == (3, 5)
    assert [r.spikes.shape[2:] for r in out.records] == [(8, 64), (16, 32), (32,)]
    net2 = SpikingConvNet(2, 4, input_size=(20, 30), dims=2, channels=(4,))
    assert net2(torch.rand(3, 2, 2, 20, 30)).logits.shape == (2, 4)
    assert net2.arch["input_size"] == [20, 30]


def _two_class_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    centers = torch.tensor([[0.8] * 4 + [0.1] * 4, [0.1] * 4 + [0.8] * 4])
    x = (centers[y] + 0.15 * torch.randn(n, 8, generator=g)).clamp(0, 1)
    return x, y


def test_bptt_training_learns() -> None:
    torch.manual_seed(0)
    x, y = _two_class_data(256, 1)
    xv, yv = _two_class_data(200, 2)
    net = SpikingMLP([8, 32, 2], surrogate="fast_sigmoid")
    enc = Encoder("rate", 10)
    hist = fit(net, x, y, TrainConfig(epochs=5, lr=5e-3, progress=False), encode=enc, x_val=xv, y_val=yv)
    assert len(hist.loss) == 5 and hist.loss[-1] < hist.loss[0]
    assert evaluate(net, xv, yv, enc) > 0.9


def test_pruning_survives_finetuning() -> None:
    torch.manual_seed(0)
    net = SpikingConvNet(2, 3, input_size=(12, 12), dims=2, channels=(8, 16))
    pruner = Pruner(net, skip=["readout"])
    pruner.prune(0.97)
    assert abs(weight_sparsity(net, skip=["readout"])["total"] - 0.97) < 0.01
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    pruner.attach(opt)
    x = torch.rand(4, 8, 2, 12, 12)
    for _ in range(5):
        loss = net(x).logits.pow(2).sum() + sum(p.sum() for p in net.parameters())
        opt.zero_grad()
        loss.backward()
        opt.step()
    sp = weight_sparsity(net, skip=["readout"])
    assert abs(sp["total"] - 0.97) < 0.01
    pruner.detach()
    assert gradual_sparsity(0, 10, 0.9) == 0.0 and gradual_sparsity(10, 10, 0.9) == pytest.approx(0.9)
    assert math.isclose(gradual_sparsity(5, 10, 0.8), 0.8 - 0.8 * 0.125)
