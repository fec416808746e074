"""LoAS: packing formats, exactness of the FTP inner join, the per-timestep backend and the cost model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sim_hw.loas.config import LoASConfig
from sim_hw.loas.dataflow import inner_join_reference, join_stats, run_layer
from sim_hw.loas.layer import LoASLayer
from sim_hw.loas.packing import (
    compress_weights,
    mask_one_spike,
    pack_spikes,
    popcount,
    silent_ratio,
    spike_sparsity,
    unpack_spikes,
)
from sim_hw.loas.perf import design_cost
from sim_hw.registry import make_backend


def _spikes(t: int, n: int, k: int, rate: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((t, n, k), generator=g) < rate).float()


def _sparse_int_weights(k: int, m: int, density: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(-127, 128, (k, m), generator=g).float()
    return w * (torch.rand((k, m), generator=g) < density)


def test_packing_roundtrip_and_ratios() -> None:
    s = _spikes(4, 5, 33, 0.3)
    words = pack_spikes(s)
    assert words.shape == (5, 33) and int(words.max()) < 16
    assert torch.equal(unpack_spikes(words, 4), s)
    assert torch.equal(popcount(words, 4), s.sum(0).long())
    assert silent_ratio(words) == pytest.approx(float((s.sum(0) == 0).float().mean()))
    assert spike_sparsity(s) == pytest.approx(1 - float(s.mean()))
    masked = mask_one_spike(words, 4)
    assert torch.equal(masked == 0, (popcount(words, 4) <= 1))


def test_independent_spikes_pack_badly_correlated_pack_well() -> None:
    """Packing keeps sparsity only when spikes are correlated in time: independent spikes of sparsity s
    leave a silent ratio of s**T."""
    t, s = 4, 0.812
    indep = _spikes(t, 200, 500, 1 - s)
    assert silent_ratio(pack_spikes(indep)) == pytest.approx(s**t, abs=0.01)
    base = _spikes(1, 200, 500, 1 - s).expand(t, -1, -1)  # the same neurons fire every step
    assert silent_ratio(pack_spikes(base)) == pytest.approx(s, abs=0.01)


def test_compressed_fibers() -> None:
    w = _sparse_int_weights(40, 6, 0.2)
    fib = compress_weights(w)
    assert torch.equal(fib.to_dense(), w)
    mask, vals = fib.column(3)
    assert torch.equal(vals, w[:, 3][w[:, 3] != 0]) and torch.equal(mask, w[:, 3] != 0)
    assert fib.sparsity == pytest.approx(1 - float((w != 0).float().mean()))


@pytest.mark.parametrize("one_spike_mask", [False, True])
def test_ftp_join_equals_dense_reference(one_spike_mask: bool) -> None:
    a = _spikes(4, 12, 300, 0.25)
    b = _sparse_int_weights(300, 9, 0.1)
    out, st = run_layer(a, b, one_spike_mask=one_spike_mask)
    words = pack_spikes(a)
    if one_spike_mask:
        words = mask_one_spike(words, 4)
    dense = torch.einsum("tnk,km->tnm", unpack_spikes(words, 4).double(), b.double()).float()
    assert torch.equal(out, dense)
    assert torch.equal(inner_join_reference(words[:4], compress_weights(b), 4), dense[:, :4])
    assert st.matches_t <= 4 * st.matches and st.zero_bit_corrections == 4 * st.matches - st.matches_t


def test_backend_layer_per_timestep_is_exact_and_windows_costs() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))
    hw = make_backend("loas", timesteps=4).prepare(net)
    layer = hw.layer("0")
    assert isinstance(layer, LoASLayer)
    a = _spikes(4, 3, 64, 0.3)
    for t in range(4):
        y = layer(a[t])
        assert torch.equal(y, (a[t] @ layer.q.t()) * layer.w_scale + layer.bias)
    cost = hw.cost()
    lc = cost.layer("0")
    assert (
        lc.calls == 4 and lc.counts["windows"] == 1 and lc.energy_total_pj > 0 and lc.macs == 4 * 3 * 64 * 16
    )
    exact = make_backend("loas", weight_bits=0).prepare(net)
    x = torch.rand(3, 64)
    assert torch.equal(exact(x), net(x).detach())  # float weights: bit-identical to the layer
    _, run_cost = exact.run(x)  # a partial window is costed at the end of run()
    assert run_cost.layer("2").counts["windows"] == 1


def test_ftp_beats_sequential_baselines_and_slows_with_weight_density() -> None:
    cfg = LoASConfig()
    base = _spikes(1, 64, 512, 0.25, seed=3)
    flips = _spikes(4, 64, 512, 0.05, seed=4)
    a = torch.clamp(base.expand(4, -1, -1) - flips, 0, 1)  # correlated in time, like real SNN layers
    latency = []
    for density in (0.02, 0.25, 0.75):
        mask = _sparse_int_weights(512, 64, density, seed=5) != 0
        st = join_stats(a, mask, cfg.n_pe, cfg.join_width)
        loas = design_cost(st, cfg, "loas")
        latency.append(loas.latency_ns)
        for design in ("sparten", "gospa", "gamma"):
            other = design_cost(st, cfg, design)
            assert other.latency_ns > loas.latency_ns and other.energy_total_pj > loas.energy_total_pj
    # LoAS itself loses most of its throughput when weights get dense (the paper: ~88% from 98% to 25% sparse)
    assert latency[0] < latency[1] < latency[2] and latency[0] / latency[2] < 0.2


def test_invalid_loas_params() -> None:
    from sim_hw.errors import BackendConfigError

    with pytest.raises(BackendConfigError, match="timesteps"):
        make_backend("loas", timesteps=0)
    with pytest.raises(ValueError, match="design"):
        design_cost(
            join_stats(_spikes(2, 2, 8, 0.5), torch.ones(8, 2, dtype=torch.bool)), LoASConfig(), "tpu"
        )
