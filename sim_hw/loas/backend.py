"""The `loas` backend: every Linear/Conv becomes a LoASLayer; analytic cost for extra products."""

from __future__ import annotations

import torch
from torch import nn

from sim_hw.backend import Backend
from sim_hw.cost import CostReport
from sim_hw.loas.config import LoASConfig
from sim_hw.loas.dataflow import join_stats
from sim_hw.loas.layer import LoASLayer
from sim_hw.loas.perf import design_cost

__all__ = ["LoASBackend"]


class LoASBackend(Backend):
    """Tag `loas`: dual-sparse SNN accelerator with fully temporal-parallel dataflow (see LoASConfig).

    How to hand it spikes: `prepare(model)` wraps each Linear/Conv; run the SNN as usual, one
    timestep per layer call ([B, ...] binary spikes per call) and the layer packs `timesteps`
    consecutive calls into one window. For a single layer with all timesteps at hand, use
    `sim_hw.loas.run_layer(spikes[T, N, K], weights[K, M])` or `LoASLayer.run_window`.
    """

    kind = "loas"
    config: LoASConfig

    def wrap(self, module: nn.Module, name: str, index: int) -> LoASLayer:
        return LoASLayer(module, name, self.config)

    def cost_mvm(
        self,
        rows: int,
        cols: int,
        n: int = 1,
        phase: str = "learning",
        name: str = "mvm",
        input_bits: int | None = None,
        spike_rate: float = 0.2,
        weight_density: float = 1.0,
    ) -> CostReport:
        """Cost of `n` spike-vector × rows×cols products (grouped in T-step windows), for spikes
        firing at `spike_rate` independently and a weight matrix of `weight_density`."""
        t = self.config.timesteps
        windows = max(1, -(-int(n) // t))
        gen = torch.Generator().manual_seed(0)
        spikes = (torch.rand((t, 1, int(rows)), generator=gen) < spike_rate).float()
        mask = torch.rand((int(rows), int(cols)), generator=gen) < weight_density
        st = join_stats(spikes, mask, self.config.n_pe, self.config.join_width)
        cost = design_cost(st, self.config, "loas", name, input_bits=input_bits or 1, phase=phase)
        for key in cost.energy_pj:
            cost.energy_pj[key] *= windows
        cost.latency_ns *= windows
        cost.macs = int(rows) * int(cols) * int(n)
        cost.calls = int(n)
        return CostReport([cost], backend=self.kind)
