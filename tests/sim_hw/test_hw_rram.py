"""RRAM crossbar: ideal limit, noise statistics, drift, faults, seeding, learning hooks and costs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sim_hw.registry import make_backend
from sim_hw.rram.backend import calibrate
from sim_hw.rram.layer import RRAMLayer

QUIET = dict(prog_noise=0.0, read_noise=0.0, drift_nu=0.0, drift_nu_std=0.0)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _linear(k: int = 200, m: int = 24, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(k, m)


@pytest.mark.parametrize("bit_serial", [True, False])
def test_noise_off_matches_ideal_within_quantisation(bit_serial: bool) -> None:
    lin = _linear()
    x = torch.randn(32, 200)
    hw = make_backend(
        "rram", **QUIET, weight_bits=12, adc_bits=14, dac_bits=12, bit_serial=bit_serial
    ).prepare(lin)
    y, cost = hw.run(x)
    ref = lin(x).detach()
    assert _rel(y, ref) < 2e-3
    layer = hw.layer("layer")
    assert isinstance(layer, RRAMLayer)
    wq = layer.target_weights()
    assert _rel(x @ wq.t() + lin.bias.detach(), ref) < 2e-3  # the weight grid is the only other error
    assert cost.total_macs == 32 * 200 * 24 and cost.total_energy_pj > 0


def test_conv_mapping_and_low_precision_error_grows() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 8, 3, padding=1, stride=2)
    x = torch.randn(2, 3, 9, 9)
    ref = conv(x).detach()
    fine = make_backend("rram", **QUIET, adc_bits=0, dac_bits=0).prepare(conv)(x)
    coarse = make_backend("rram", **QUIET, adc_bits=4, dac_bits=4, weight_bits=4).prepare(conv)(x)
    assert fine.shape == ref.shape == (2, 8, 5, 5)
    assert _rel(fine, ref) < 0.01 < _rel(coarse, ref)
    conv1 = nn.Conv1d(2, 4, 5, padding=2)
    x1 = torch.randn(3, 2, 16)
    assert (
        _rel(make_backend("rram", **QUIET, adc_bits=0, dac_bits=0).prepare(conv1)(x1), conv1(x1).detach())
        < 0.01
    )


def test_programming_noise_sigma_matches_config() -> None:
    sigma = 0.02
    hw = make_backend(
        "rram",
        prog_noise=sigma,
        read_noise=0.0,
        drift_nu=0.0,
        drift_nu_std=0.0,
        weight_bits=8,
        bits_per_cell=7,
    ).prepare(_linear(256, 64))  # one slice per weight
    layer = hw.layer("layer")
    assert isinstance(layer, RRAMLayer)
    levels = layer.cfg.levels_per_cell
    err = (layer.read_weights() - layer.target_weights()) / (layer.w_scale[:, None] * (levels - 1))
    # a pair's difference carries the noise of both devices: σ√2 in units of the conductance range
    assert float(err.std()) == pytest.approx(sigma * 2**0.5, rel=0.05)
    assert abs(float(err.mean())) < 0.1 * sigma


def test_read_noise_is_per_access_and_seeded() -> None:
    lin, x = _linear(), torch.randn(8, 200)
    a = make_backend("rram", seed=3, read_noise=0.02).prepare(lin)
    b = make_backend("rram", seed=3, read_noise=0.02).prepare(lin)
    c = make_backend("rram", seed=4, read_noise=0.02).prepare(lin)
    y1, y2 = a(x), a(x)
    assert not torch.equal(y1, y2)  # a fresh read-noise draw per access
    assert torch.equal(y1, b(x)) and torch.equal(y2, b(x))  # same seed, same sequence
    assert not torch.equal(y1, c(x))


def test_drift_is_monotone_with_age_and_compensated() -> None:
    cfg = dict(prog_noise=0.0, read_noise=0.0, drift_nu=0.05, drift_nu_std=0.01)
    raw = make_backend("rram", **cfg, drift_compensation=False).prepare(_linear())
    comp = make_backend("rram", **cfg, drift_compensation=True).prepare(_linear())
    x = torch.rand(16, 200)
    sums, errs = [], []
    ref = comp(x)
    for age in (0.0, 10.0, 1e3, 1e5, 1e7):  # cumulative ages: 0, 10, 1010, ...
        raw.age(age)
        comp.age(age)
        layer = raw.layer("layer")
        assert isinstance(layer, RRAMLayer)
        sums.append(float(layer.devices.conductance().sum()))
        errs.append((_rel(raw(x), ref), _rel(comp(x), ref)))
    assert sums[0] == sums[1]  # younger than t0 = 20 s: no drift yet
    assert all(b < a for a, b in zip(sums[1:], sums[2:], strict=False))
    assert errs[-1][1] < errs[-1][0]  # global compensation recovers most of the lost gain
    with pytest.raises(ValueError, match="forward"):
        raw.age(-1.0)


def test_stuck_at_faults_are_counted_and_stuck() -> None:
    hw = make_backend("rram", p_stuck_off=0.1, p_stuck_on=0.05, seed=2).prepare(_linear(256, 64))
    layer = hw.layer("layer")
    assert isinstance(layer, RRAMLayer)
    counts = layer.fault_counts
    n = counts["devices"]
    assert n == 4 * 2 * 256 * 64
    assert counts["stuck_off"] / n == pytest.approx(0.1, rel=0.05)
    assert counts["stuck_on"] / n == pytest.approx(0.05, rel=0.07)
    g = layer.devices.conductance()
    assert torch.all(g[layer.devices.stuck == 2] == layer.cfg.g_max_us)
    before = g[layer.devices.stuck == 1].clone()
    layer.program_update(torch.full((64, 256), 0.3))
    assert torch.equal(layer.devices.conductance()[layer.devices.stuck == 1], before)


def test_program_update_noise_and_learning_cost() -> None:
    hw = make_backend("rram", seed=5, update_noise=0.02, read_noise=0.0).prepare(_linear(128, 16))
    layer = hw.layer("layer")
    assert isinstance(layer, RRAMLayer)
    none = layer.program_update(torch.zeros(16, 128))
    assert none.total_energy_pj == pytest.approx(none.breakdown()["buffer"])  # no pulse, only the buffer read
    w0, q0 = layer.read_weights().clone(), layer.target_weights().clone()
    delta = torch.zeros(16, 128)
    delta[:, :8] = 0.01  # small next to the weight range (≈0.09), so nothing saturates
    cost = layer.program_update(delta)
    w1, q1 = layer.read_weights(), layer.target_weights()
    room = (q0[:, :8] + 0.01) < 127 * layer.w_scale[:, None]  # channels' largest weights saturate at ±127 LSB
    assert bool(room.float().mean() > 0.8)
    assert torch.allclose((q1 - q0)[:, :8][room], delta[:, :8][room], atol=1.01 * float(layer.w_scale.max()))
    assert torch.equal(q1[:, 8:], q0[:, 8:])
    moved = (w1 - w0)[:, :8]
    assert not torch.allclose(moved, q1[:, :8] - q0[:, :8], atol=1e-6)  # the update lands with noise
    lc = cost.layers[0]
    assert lc.phase == "learning" and lc.energy_pj["write"] > 0 and lc.latency_ns > 0
    assert lc.counts["write_pulses"] > 0
    total = hw.cost()
    assert total.energy_by_phase()["learning"] > 0 and total.energy_by_phase()["inference"] == 0


def test_transposed_read_and_feedback_cost() -> None:
    lin = _linear(96, 20)
    hw = make_backend("rram", **QUIET, adc_bits=0, dac_bits=0).prepare(lin)
    layer = hw.layer("layer")
    assert isinstance(layer, RRAMLayer)
    e = torch.randn(4, 20)
    back = layer.mvm_transposed(e)
    assert back.shape == (4, 96)
    assert _rel(back, e @ layer.target_weights()) < 1e-3
    assert hw.cost().layer("layer.T", "learning").macs == 4 * 96 * 20
    fb = hw.backend.cost_mvm(20, 96, n=10)
    assert fb.layers[0].phase == "learning" and fb.total_macs == 20 * 96 * 10 and fb.total_energy_pj > 0
    hw.add_cost(fb)
    assert hw.cost().energy_by_phase()["learning"] > fb.total_energy_pj


def test_pj_per_mac_near_neurosim() -> None:
    """128×128 tile, 4-bit ADC, 8-bit weights and bit-serial 8-bit inputs, 2-bit cells (ISAAC), 22 nm:
    within 2× of NeuroSim V1.4's 0.10–0.18 pJ/MAC (SCIENCE 3.2)."""
    torch.manual_seed(0)
    hw = make_backend("rram", adc_bits=4, weight_bits=8, dac_bits=8, bits_per_cell=2).prepare(
        nn.Linear(128, 16)
    )
    _, cost = hw.run(torch.rand(64, 128))
    assert cost.layers[0].utilisation == 1.0
    assert 0.10 / 2 <= cost.pj_per_mac <= 0.18 * 2
    parts = cost.breakdown()
    assert set(parts) == {"array", "dac", "adc", "shift_add", "buffer"} and all(v > 0 for v in parts.values())


def test_calibration_and_ir_drop() -> None:
    lin = _linear()
    x = torch.relu(torch.randn(64, 200))
    ref = lin(x).detach()
    worst = make_backend("rram", **QUIET, adc_bits=5).prepare(lin)
    tuned = make_backend("rram", **QUIET, adc_bits=5).prepare(lin)
    calibrate(tuned, x)
    assert _rel(tuned(x), ref) < _rel(worst(x), ref)
    ir = make_backend("rram", **QUIET, adc_bits=0, dac_bits=0, ir_drop=0.2).prepare(lin)
    y = ir(x) - lin.bias.detach()
    assert float(y.abs().sum()) < float((ref - lin.bias.detach()).abs().sum())


def test_device_to_device_variation_is_fixed_per_device() -> None:
    lin = _linear()
    hw = make_backend("rram", **QUIET, d2d_variation=0.1, seed=7).prepare(lin)
    layer = hw.layer("layer")
    assert isinstance(layer, RRAMLayer)
    gain = layer.devices.gain
    assert float(gain.std()) == pytest.approx(0.1, rel=0.1)
    w1 = layer.read_weights().clone()
    assert _rel(w1, layer.target_weights()) > 0.01
    layer.program_update(torch.zeros(24, 200))
    assert torch.equal(layer.read_weights(), w1)  # same devices, same gains: nothing moved
