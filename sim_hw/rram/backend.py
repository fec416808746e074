"""The `rram` backend: every Linear/Conv becomes an RRAMLayer; analytic costs for extra MVMs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sim_hw.backend import Backend, HardwareModel
from sim_hw.cost import CostReport
from sim_hw.rram.config import RRAMConfig
from sim_hw.rram.energy import MvmActivity, RRAMCostModel
from sim_hw.rram.layer import RRAMLayer

__all__ = ["RRAMBackend", "calibrate"]


class RRAMBackend(Backend):
    """Tag `rram`: crossbar tiles with bit-sliced differential conductance pairs (see RRAMConfig)."""

    kind = "rram"
    config: RRAMConfig

    def wrap(self, module: nn.Module, name: str, index: int) -> RRAMLayer:
        return RRAMLayer(module, name, self.config, index)

    def cost_mvm(
        self,
        rows: int,
        cols: int,
        n: int = 1,
        phase: str = "learning",
        name: str = "mvm",
        input_bits: int | None = None,
    ) -> CostReport:
        """Cost of `n` MVMs y[cols] = x[rows]·B on a freshly mapped rows×cols crossbar (e.g. DFA's B·e),
        assuming half of the input bits are 1 and cells at mid conductance; nothing is computed.
        `input_bits=1` is a spike input (one plane)."""
        cfg = self.config
        model = RRAMCostModel(cfg, int(rows), int(cols))
        bits = cfg.dac_bits if input_bits is None else int(input_bits)
        planes = 1 if bits <= 1 or not cfg.bit_serial else bits - 1
        active = 0.5 * n * planes * rows
        row_g = 2 * cfg.n_slices * cols * (cfg.g_min_us + cfg.g_max_us) / 2
        act = MvmActivity(
            n_vectors=int(n),
            planes=planes,
            dac_events=active * model.col_tiles,
            array_g_v2=active * row_g,
            input_bits=max(1, bits),
        )
        cost = model.inference(name, act)
        cost.phase = phase
        return CostReport([cost], backend=self.kind)


@torch.no_grad()
def calibrate(hw_model: HardwareModel, *args: Any, **kwargs: Any) -> None:
    """Run `hw_model` on representative inputs and set every ADC's full scale to the largest partial
    sum it saw (per row group and pair column), instead of the never-clipping worst case."""
    layers = [m for m in hw_model.hw_layers() if isinstance(m, RRAMLayer)]
    for m in layers:
        m.start_calibration()
    try:
        hw_model.model(*args, **kwargs)
    finally:
        for m in layers:
            m.finish_calibration()
    hw_model.reset_cost()
