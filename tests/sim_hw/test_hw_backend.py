"""Backend selection, spec parsing, the ideal backend and cost reports."""

from __future__ import annotations

import msgpack
import pytest
import torch
from torch import nn

# Submodule imports: under pytest's default import mode tests/sim_hw can shadow the package name.
from sim_hw.cost import CostReport, LayerCost
from sim_hw.errors import BackendConfigError
from sim_hw.registry import make_backend, parse_backend_spec, resolve_backend_spec


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def test_ideal_is_torch_exactly() -> None:
    net = _net()
    x = torch.randn(3, 2, 6, 6)
    hw = make_backend("ideal").prepare(net)
    y, cost = hw.run(x)
    assert torch.equal(y, net(x).detach())
    assert cost.total_macs == 3 * (4 * 36 * 18) + 3 * 144 * 5
    assert cost.total_energy_pj == 0.0


def test_unknown_kind_and_param_list_valid_ones() -> None:
    with pytest.raises(BackendConfigError, match="valid kinds: ideal, rram, loas"):
        make_backend("pcm")
    with pytest.raises(BackendConfigError, match="adc_bits"):
        make_backend("rram", adc_bitz=4)
    with pytest.raises(BackendConfigError, match="must be int"):
        make_backend("rram", adc_bits="six")
    with pytest.raises(BackendConfigError, match="parallel_rows"):
        make_backend("rram", parallel_rows=50)


def test_parse_spec_forms() -> None:
    assert parse_backend_spec("rram") == ("rram", {})
    assert parse_backend_spec("rram:adc_bits=6,read_noise=0.01,bit_serial=false") == (
        "rram",
        {"adc_bits": 6, "read_noise": 0.01, "bit_serial": False},
    )
    assert parse_backend_spec({"kind": "rram", "adc_bits": 6}) == ("rram", {"adc_bits": 6})
    assert parse_backend_spec({"kind": "loas", "params": {"timesteps": 8}}) == ("loas", {"timesteps": 8})
    with pytest.raises(BackendConfigError, match="not key=value"):
        parse_backend_spec("rram:adc_bits")
    with pytest.raises(BackendConfigError, match="no 'kind'"):
        parse_backend_spec({"adc_bits": 6})
    kind, params = parse_backend_spec("rram:adc_bits=6")
    assert make_backend(kind, **params).config.adc_bits == 6
    assert make_backend("rram", adc_bits="5").config.adc_bits == 5  # CLI strings are coerced


def test_override_switches_all_nodes() -> None:
    assert resolve_backend_spec({"kind": "rram", "adc_bits": 6}, None) == ("rram", {"adc_bits": 6})
    assert resolve_backend_spec({"kind": "rram", "adc_bits": 6}, "rram:read_noise=0") == (
        "rram",
        {"adc_bits": 6, "read_noise": 0},
    )
    assert resolve_backend_spec({"kind": "rram", "adc_bits": 6}, "loas") == ("loas", {})
    assert resolve_backend_spec(None, None) == ("ideal", {})


def test_cost_report_add_dict_table() -> None:
    a = CostReport(
        [
            LayerCost(
                "fc",
                energy_pj={"adc": 2.0, "array": 1.0},
                latency_ns=5.0,
                area_mm2=0.1,
                utilisation=0.5,
                macs=10,
            )
        ],
        backend="rram",
    )
    b = CostReport(
        [
            LayerCost("fc", energy_pj={"adc": 1.0}, latency_ns=5.0, area_mm2=0.1, utilisation=1.0, macs=10),
            LayerCost("fc", phase="learning", energy_pj={"write": 4.0}),
        ]
    )
    s = a + b
    assert s.total_energy_pj == 8.0 and s.total_macs == 20 and s.total_latency_ns == 10.0
    assert s.layer("fc").utilisation == pytest.approx(0.75)
    assert s.total_area_mm2 == pytest.approx(0.1)  # same layer, area not double counted
    assert s.energy_by_phase() == {"inference": 4.0, "learning": 4.0}
    assert s.phase("learning").total_energy_pj == 4.0
    d = s.to_dict()
    assert d["total"]["breakdown_pj"] == {"adc": 3.0, "array": 1.0, "write": 4.0}
    assert CostReport.from_dict(d).to_dict() == d
    assert msgpack.unpackb(msgpack.packb(d)) == d  # plain types only: it can travel in a message
    assert "TOTAL" in s.table() and "fc" in s.table()
    assert sum([a, b]).total_energy_pj == 8.0
    with pytest.raises(ValueError, match="phase"):
        LayerCost("x", phase="training")


def test_run_vs_accumulated_cost() -> None:
    hw = make_backend("rram", seed=1).prepare(_net())
    x = torch.randn(2, 2, 6, 6)
    _, c1 = hw.run(x)
    _, c2 = hw.run(x)
    total = hw.cost()
    assert total.total_energy_pj == pytest.approx(c1.total_energy_pj + c2.total_energy_pj)
    assert total.layers[0].calls == 2
    hw.reset_cost()
    assert hw.cost().total_energy_pj == 0.0
    assert set(hw.layers()) == {"0", "3"}
    with pytest.raises(KeyError, match="layers: 0, 3"):
        hw.layer("fc9")
