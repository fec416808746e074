"""Online adaptation on emulated RRAM: recovery after a shift, label fraction, batching, costs and schedules."""

from __future__ import annotations

import pytest
import torch

from models.adapt import AdaptConfig, AdaptError, OnlineAdapter
from models.adapt.offline import fit_rule
from models.snn import SpikingMLP
from models.train import TrainConfig
from sim_hw import make_backend
from sim_hw.learning import (
    UpdateStage,
    feedback_area_mm2,
    feedback_backend,
    transposed_area_mm2,
    update_latency_ns,
)

T, N_IN, N_CLS = 5, 8, 3
HW = {"prog_noise": 0.03, "read_noise": 0.005, "seed": 2}


pytestmark = pytest.mark.usefixtures("torch_one_thread_module")


def _protos() -> torch.Tensor:
    return torch.rand(N_CLS, N_IN, generator=torch.Generator().manual_seed(0)) * 1.5


def _task(n: int, seed: int, shift: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of noisy constant inputs [T, n, N_IN] around fixed prototypes; `shift` mixes features."""
    protos = _protos()
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, N_CLS, (n,), generator=g)
    x = protos[y] + 0.15 * torch.randn(n, N_IN, generator=g)
    if shift is not None:
        x = (x @ shift).clamp(min=0)
    return x.unsqueeze(0).expand(T, n, N_IN).contiguous(), y


@pytest.fixture(scope="module")
def pretrained() -> SpikingMLP:
    torch.manual_seed(0)
    net = SpikingMLP([N_IN, 24, N_CLS], beta=0.8)
    x, y = _task(300, 1)
    fit_rule(
        net,
        x.transpose(0, 1),
        y,
        TrainConfig(epochs=15, lr=1e-2, batch_size=30, progress=False),
        rule="dfa",
        encode=lambda b: b.transpose(0, 1),
        n_classes=N_CLS,
    )
    return net


def _shift() -> torch.Tensor:
    """A linear change of the inputs that moves class c's prototype halfway onto class c+1's: the frozen
    model now confuses them (a new wearer whose signals look like another activity's)."""
    p = _protos()
    to_next = torch.linalg.pinv(p) @ p.roll(-1, 0)  # p @ to_next == p.roll(-1, 0)
    return 0.4 * torch.eye(N_IN) + 0.6 * to_next


def _stream(net: SpikingMLP, rule: str, n: int = 100, **cfg: object) -> tuple[OnlineAdapter, list[int]]:
    ad = OnlineAdapter(make_backend("rram", **HW).prepare(net), AdaptConfig(rule=rule, **cfg), N_CLS)  # type: ignore[arg-type]
    x, y = _task(n, 7, _shift())
    hits = []
    for i in range(n):
        tr = ad.infer(x[:, i : i + 1])
        hits.append(int(tr.logits.argmax(1)[0] == y[i]))
        ad.observe(tr, y[i : i + 1])
    return ad, hits


def test_shift_drops_accuracy_and_dfa_and_bp_recover_it(pretrained: SpikingMLP) -> None:
    x, y = _task(200, 3)
    hw = make_backend("rram", **HW).prepare(pretrained)
    clean = float((hw(x).logits.argmax(1) == y).float().mean())
    _, none = _stream(pretrained, "none")
    _, dfa = _stream(pretrained, "dfa", lr=0.3)
    _, bp = _stream(pretrained, "bp", lr=0.3)
    tail = lambda h: sum(h[-50:]) / 50  # noqa: E731
    assert clean > 0.9
    assert tail(none) < clean - 0.2, "the shift must hurt the frozen model"
    assert tail(dfa) > tail(none) + 0.15 and tail(bp) > tail(none) + 0.15


def test_label_fraction_update_batching_and_costs(pretrained: SpikingMLP) -> None:
    ad, _ = _stream(pretrained, "dfa", n=60, label_fraction=0.5, update_every=3, seed=1)
    s = ad.summary()
    assert s["labelled"] == 60 and 15 <= s["revealed"] <= 45
    assert s["updates"] == s["revealed"] // 3
    assert s["learning_energy_pj"] > 0 and s["energy_pj_per_update"] > 0 and s["latency_ns_per_update"] > 0
    names = {c.name for c in ad.stats.learning.layers}
    assert {"dfa.feedback", "layers.0.synapse", "readout"} <= names and not any(
        n.endswith(".T") for n in names
    )
    assert 0 < s["learning_mm2"] < s["inference_mm2"] * 10
    bp, _ = _stream(pretrained, "bp", n=10)
    assert {"readout.T"} <= {c.name for c in bp.stats.learning.layers}
    assert bp.summary()["learning_mm2"] > 0
    none, _ = _stream(pretrained, "none", n=10)
    assert none.summary()["updates"] == 0 and none.summary()["learning_energy_pj"] == 0
    assert none.summary()["learning_mm2"] == 0


def test_unlabelled_windows_are_not_scored_and_config_is_checked(pretrained: SpikingMLP) -> None:
    ad = OnlineAdapter(make_backend("ideal").prepare(pretrained), AdaptConfig(rule="bp"), N_CLS)
    x, _ = _task(1, 0)
    assert ad.observe(ad.infer(x), torch.tensor([-1])) is None
    assert ad.summary()["labelled"] == 0 and ad.summary()["windows"] == 1
    report = ad.observe(ad.infer(x), torch.tensor([2]))
    assert report is not None and report.rule == "bp" and report.windows == 1
    for bad in ({"rule": "hebb"}, {"label_fraction": 1.5}, {"update_every": 0}):
        with pytest.raises(AdaptError):
            AdaptConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(AdaptError, match="spiking layers 0..0"):
        OnlineAdapter(make_backend("ideal").prepare(pretrained), AdaptConfig(layers=(3,)), N_CLS)


@pytest.mark.parametrize("rule", ["dfa", "bp", "none"])
def test_a_label_the_model_does_not_know_is_a_clear_error(pretrained: SpikingMLP, rule: str) -> None:
    """Not an IndexError deep in the rule (dfa, bp), nor a window silently scored wrong (none)."""
    ad = OnlineAdapter(make_backend("ideal").prepare(pretrained), AdaptConfig(rule=rule), N_CLS)  # type: ignore[arg-type]
    x, _ = _task(1, 0)
    with pytest.raises(AdaptError, match=rf"label {N_CLS} is not a class of this model \(classes 0..2\)"):
        ad.observe(ad.infer(x), torch.tensor([N_CLS]))
    assert ad.summary()["labelled"] == 0


def test_update_schedules_parallel_vs_sequential() -> None:
    stages = [UpdateStage("out", 0.0, 100.0), UpdateStage("h2", 40.0, 300.0), UpdateStage("h1", 50.0, 200.0)]
    assert update_latency_ns(stages, "parallel") == 340.0  # max(read + write)
    # sequential: errors reach h2 at 40, h1 at 90; writes overlap with the reads below
    assert update_latency_ns(stages, "sequential") == max(100.0, 40 + 300.0, 90 + 200.0)
    assert update_latency_ns([], "parallel") == 0.0
    with pytest.raises(ValueError, match="schedule"):
        update_latency_ns(stages, "async")  # type: ignore[arg-type]


def test_learning_area_models() -> None:
    rram = make_backend("rram")
    fb = feedback_backend(rram, 2)
    assert fb.config.weight_bits == 2 and rram.config.weight_bits == 8  # type: ignore[attr-defined]
    assert 0 < feedback_area_mm2(fb, [(6, 64)]) < feedback_area_mm2(rram, [(6, 64)])
    # the matrices share their input: side by side in one tile, not one tile each
    assert feedback_area_mm2(fb, [(6, 16), (6, 32)]) == feedback_area_mm2(fb, [(6, 48)])
    small, big = transposed_area_mm2(rram, [(128, 16)]), transposed_area_mm2(rram, [(512, 64)])
    assert 0 < small < big
    assert feedback_area_mm2(make_backend("ideal"), [(6, 64)]) == 0.0


def test_error_triggered_learning_skips_confident_windows(pretrained: SpikingMLP) -> None:
    always, _ = _stream(pretrained, "dfa", n=40, lr=0.3)
    gated, hits = _stream(pretrained, "dfa", n=40, lr=0.3, learn_below=0.6)
    s = gated.summary()
    assert s["skipped"] > 0 and s["updates"] == s["revealed"] == 40 - s["skipped"]
    assert always.summary()["updates"] == 40 and always.summary()["skipped"] == 0
    assert s["learning_energy_pj"] < always.summary()["learning_energy_pj"]
    with pytest.raises(AdaptError, match="learn_below"):
        AdaptConfig(learn_below=0.0)
