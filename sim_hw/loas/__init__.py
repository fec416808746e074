"""LoAS emulation: packed spikes, compressed weight fibers, the FTP inner join, cycles and energy."""

from __future__ import annotations

from sim_hw.loas.backend import LoASBackend
from sim_hw.loas.config import LoASConfig
from sim_hw.loas.dataflow import JoinStats, inner_join_reference, join_stats, run_layer
from sim_hw.loas.layer import LoASLayer
from sim_hw.loas.packing import (
    CompressedWeights,
    compress_weights,
    mask_one_spike,
    pack_spikes,
    popcount,
    silent_ratio,
    spike_sparsity,
    unpack_spikes,
)
from sim_hw.loas.perf import DESIGNS, design_cost, loas_area_mm2

__all__ = [
    "LoASBackend",
    "LoASConfig",
    "LoASLayer",
    "JoinStats",
    "run_layer",
    "inner_join_reference",
    "join_stats",
    "CompressedWeights",
    "compress_weights",
    "mask_one_spike",
    "pack_spikes",
    "popcount",
    "silent_ratio",
    "spike_sparsity",
    "unpack_spikes",
    "DESIGNS",
    "design_cost",
    "loas_area_mm2",
]
