"""Learning-phase costs of on-device training: update latency schedules and the extra area each rule needs.

Two on-chip learning rules are compared [SCIENCE 3.4]:

- **DFA** (Direct Feedback Alignment): every adapted layer l gets its error from a fixed random
  feedback matrix B_l (δ_l = B_l·e; all B_l share the input e, so one feedback crossbar holds them
  side by side and one small MVM serves every layer), so all layers compute their updates and program
  their crossbars *in parallel*. Extra area: the feedback crossbar.
- **BP** (backpropagation through time on the crossbar): the error travels down through every
  layer's own crossbar read *transposed* (driven from the columns, sensed on the rows), one layer
  after another and one time step after another. Extra area: column-side drivers and row-side ADCs
  on every crossbar that is read transposed.

The energies come from the backend's own cost model (transposed reads, feedback MVMs, writes are
all recorded in the "learning" phase). This module adds what a per-layer CostReport cannot say:
when layers wait for each other (latency) and what silicon the rule adds (area).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sim_hw.backend import Backend
from sim_hw.cost import CostReport
from sim_hw.rram.backend import RRAMBackend
from sim_hw.rram.energy import RRAMCostModel

__all__ = [
    "UpdateStage",
    "update_latency_ns",
    "feedback_area_mm2",
    "transposed_area_mm2",
    "feedback_backend",
    "learning_energy_pj",
]

Schedule = Literal["parallel", "sequential"]


@dataclass(frozen=True)
class UpdateStage:
    """One adapted layer in one update: `read_ns` is the time of the MVMs that produce this layer's
    error (DFA: its feedback MVM; BP: the transposed read *of the layer above*, which hands the error
    down), `write_ns` the time to program its crossbar (rows one after another).

    Example: `UpdateStage("fc1", read_ns=40.0, write_ns=1280.0)`
    """

    name: str
    read_ns: float
    write_ns: float


def update_latency_ns(stages: Sequence[UpdateStage], schedule: Schedule) -> float:
    """Latency of one update (ns), stages listed from the output layer down.

    parallel (DFA): every layer reads its feedback and writes at once: max_l(read_l + write_l).
    sequential (BP): the error reaches layer l only after the reads of every layer above it, so
    ready_l = Σ_{k≤l} read_k in listed order; each layer then writes while the error goes on down
    (writes overlap with the remaining reads): max_l(ready_l + write_l).
    """
    if schedule not in ("parallel", "sequential"):
        raise ValueError(f"schedule {schedule!r}: use 'parallel' (DFA) or 'sequential' (BP)")
    if not stages:
        return 0.0
    if schedule == "parallel":
        return max(s.read_ns + s.write_ns for s in stages)
    ready, finish = 0.0, 0.0
    for s in stages:
        ready += s.read_ns
        finish = max(finish, ready + s.write_ns)
    return finish


def feedback_backend(backend: Backend, feedback_bits: int) -> Backend:
    """The backend the feedback matrices live on: the same device and periphery as the layers, with
    `feedback_bits`-bit weights (random ±1/0 feedback works; Nøkland 2016 used fixed random B)."""
    if isinstance(backend, RRAMBackend):
        return RRAMBackend(dataclasses.replace(backend.config, weight_bits=max(2, int(feedback_bits))))
    return backend


def feedback_area_mm2(backend: Backend, shapes: Sequence[tuple[int, int]]) -> float:
    """Silicon of DFA's feedback matrices B_lᵀ, each `(rows, cols)` = (n_classes, n_l). They share
    their input (the error e), so they sit side by side in one crossbar of max(rows) × Σ cols, counted
    as whole tiles with their DAC/ADC periphery (0 on backends without an area model)."""
    if not isinstance(backend, RRAMBackend) or not shapes:
        return 0.0
    rows, cols = max(int(r) for r, _ in shapes), sum(int(c) for _, c in shapes)
    return float(RRAMCostModel(backend.config, rows, cols).area_mm2)


def transposed_area_mm2(backend: Backend, shapes: Sequence[tuple[int, int]]) -> float:
    """Extra periphery to read crossbars of `(K inputs, M outputs)` transposed: a DAC on every column
    and ADCs (with shift-add) muxed over the rows, `cols_per_adc` rows per ADC, on every tile
    (0 on backends without an area model)."""
    if not isinstance(backend, RRAMBackend):
        return 0.0
    cfg = backend.config
    total_um2 = 0.0
    for k, m in shapes:
        model = RRAMCostModel(cfg, int(k), int(m))
        c = model.costs
        adcs = -(-cfg.tile_rows // cfg.cols_per_adc)
        per_tile = cfg.tile_cols * c.dac_um2 + adcs * (c.adc_um2 + c.shift_add_um2)
        total_um2 += model.n_tiles * per_tile
    return total_um2 * 1e-6


def learning_energy_pj(report: CostReport) -> dict[str, float]:
    """Learning-phase energy by component (pJ), plus 'total'."""
    part = report.phase("learning").breakdown()
    part["total"] = float(sum(part.values()))
    return part
