"""Analytic latency and energy of LoAS and of timestep-sequential dual-sparse baselines from join counts."""

from __future__ import annotations

import math

from sim_hw.cost import LayerCost
from sim_hw.loas.config import LoASConfig
from sim_hw.loas.dataflow import JoinStats
from sim_hw.technology import energy_scale

__all__ = ["DESIGNS", "design_cost", "loas_area_mm2"]

DESIGNS: tuple[str, ...] = ("loas", "sparten", "gospa", "gamma")
# LoAS Table IV [2nd-hand, SCIENCE 3.3]: 2.08 mm² at 32 nm for the configured chip (16 TPPEs + cache).
_LOAS_AREA_MM2_32NM = 2.08
_PSUM_BYTES = 2  # a 16-bit membrane / partial sum kept between timesteps by sequential designs
_IDX_BYTES = 1  # a column index in a Gamma CSR fiber (M ≤ 256 per fiber segment) [assumption]


def loas_area_mm2(cfg: LoASConfig) -> float:
    from sim_hw.technology import area_scale

    return _LOAS_AREA_MM2_32NM * (cfg.n_pe / 16) * area_scale(32.0, cfg.tech_nm)


def design_cost(
    st: JoinStats,
    cfg: LoASConfig,
    design: str = "loas",
    name: str = "layer",
    input_bits: int = 1,
    phase: str = "inference",
    a_reuse: float = 1.0,
) -> LayerCost:
    """Energy (pJ by component), latency (ns), utilisation of one window on `design`.

    Components: "cache" (FiberCache/SRAM traffic), "join" (bitmask AND + prefix sums or filters),
    "accumulate" (pseudo/correction/merge adds), "neuron" (LIF updates), "dram" (HBM traffic).
    Sequential designs (sparten, gospa, gamma) loop over t: they reload weight fibers every
    timestep, read the spikes of each timestep separately, and read+write a 16-bit membrane or
    partial sum per output per timestep. `input_bits` > 1 costs a non-spike input bit-serially.
    `a_reuse` is how many GEMM rows share each input neuron (kh·kw/stride² for an im2col'd conv):
    fibers are read per row from the cache, but only the unique feature map is stored and moved
    to/from DRAM.
    """
    if design not in DESIGNS:
        raise ValueError(f"design {design!r}: use one of {', '.join(DESIGNS)}")
    e = energy_scale(45.0, cfg.tech_nm)
    sram_b = cfg.sram_pj_per_64b * e / 8  # per byte
    t, n, k, m = st.timesteps, st.rows, st.k, st.m
    groups = math.ceil(n / cfg.n_pe)
    chunks = math.ceil(k / cfg.join_width)
    bitmask_b = k / 8
    b_bytes = m * bitmask_b + st.nnz_weights  # all weight fibers (bitmask + 8-bit values)
    out_spike_bytes = n * m * t / 8
    cache_bytes = cfg.cache_kb * 1024
    b_refetch = 1 if b_bytes <= cache_bytes else groups  # weights re-streamed if they overflow

    def spill(a: float) -> float:
        # activations stay in the FiberCache between layers unless they and the weights overflow it
        a = a / max(a_reuse, 1.0)
        return a + out_spike_bytes if a + out_spike_bytes + b_bytes > cache_bytes else 0.0

    cycles: float
    cache: float
    join: float
    if design == "loas":
        a_bytes = n * bitmask_b + st.nonsilent * t / 8
        cycles = st.loas_cycles + n * chunks * cfg.slow_prefix_cycles / cfg.n_pe
        cache = a_bytes + groups * b_bytes + out_spike_bytes
        join = n * m * chunks + n * chunks  # fast prefix per (n, m); A's slow one once per row
        adds = st.matches + st.zero_bit_corrections
        dram = spill(a_bytes) + b_refetch * b_bytes
        useful = st.matches
    else:
        a_bytes = t * n * bitmask_b  # one spike bitmap per timestep
        psum = 2 * n * m * t * _PSUM_BYTES
        dram = spill(a_bytes) + b_refetch * b_bytes
        adds = st.matches_t
        useful = st.matches_t
        if design == "sparten":
            cycles = st.sparten_cycles
            cache = a_bytes + t * groups * b_bytes + psum + out_spike_bytes
            join = 2 * t * n * m * chunks  # prefix sums on both operands, every timestep
        elif design == "gospa":
            cycles = st.gospa_cycles
            cache = a_bytes + t * groups * b_bytes + psum + out_spike_bytes
            join = t * n * m  # one filter step per (n, m, t)
        else:  # gamma: a B row fiber (values + indices) fetched per spike, merged into the output row
            cycles = st.gamma_cycles
            cache = a_bytes + st.matches_t * (1 + _IDX_BYTES) + psum + out_spike_bytes
            join = st.nnz_a_t  # one merger step per fetched row
    cycles *= input_bits
    adds *= input_bits
    energy = {
        "cache": cache * sram_b,
        "join": join * cfg.prefix_pj * e,
        "accumulate": adds * cfg.add_pj * e,
        "neuron": n * m * t * cfg.lif_pj * e,
        "dram": dram * 8 * cfg.dram_pj_per_bit,
    }
    compute_ns = cycles / cfg.freq_mhz * 1e3
    dram_ns = dram / cfg.dram_gbps  # bytes / (GB/s) = ns
    latency = max(compute_ns, dram_ns)
    util = min(1.0, useful * input_bits / (cycles * cfg.n_pe)) if cycles > 0 else 0.0
    return LayerCost(
        name,
        phase,
        energy,
        latency,
        loas_area_mm2(cfg),
        util,
        macs=t * n * k * m,
        calls=1,
        counts={
            "cycles": cycles,
            "matches": st.matches,
            "matches_t": st.matches_t,
            "spikes": st.spikes,
            "nonsilent": st.nonsilent,
            "windows": 1,
            "dram_bytes": dram,
            "neurons": n * k,
            "silent": n * k - st.nonsilent,
            "area_shared": 1,
        },
    )
