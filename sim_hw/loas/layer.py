"""LoASLayer: a Linear/Conv on the LoAS accelerator, fed one timestep per call, costed per T-step window."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sim_hw.loas.config import LoASConfig
from sim_hw.loas.dataflow import join_stats
from sim_hw.loas.packing import mask_one_spike, pack_spikes
from sim_hw.loas.perf import design_cost
from sim_hw.mapped import MappedLayer, weight_matrix

__all__ = ["LoASLayer"]


class LoASLayer(MappedLayer):
    """A Linear/Conv whose product runs on LoAS; the caller's SNN calls it once per timestep.

    Output: y = x·B with B the `weight_bits` per-channel quantised weights (exact for binary x:
    identical to the dense product of the quantised weights; `weight_bits=0` keeps the float layer
    bit-for-bit). Cost: consecutive calls with the same number of rows are packed, `timesteps` at a
    time, into one [T, N, K] window and costed with the fully temporal-parallel model; a shorter
    window is costed when the shape changes, at `cost()`, or at the end of `HardwareModel.run()`.
    Non-binary inputs (e.g. a first layer fed with frames) are computed exactly and costed
    bit-serially at `analog_input_bits`. With `one_spike_mask`, neurons firing once in the window
    are dropped by the hardware — only whole windows are known then, so call `run_window`.

    Example:
        >>> layer = LoASLayer(torch.nn.Linear(32, 8), "fc", LoASConfig(timesteps=2))
        >>> for t in range(2): _ = layer((torch.rand(5, 32) < 0.2).float())
        >>> layer.cost().total_energy_pj > 0
        True
    """

    def __init__(self, module: nn.Module, name: str, cfg: LoASConfig) -> None:
        super().__init__(module, name)
        self.cfg = cfg
        w = weight_matrix(module).float()  # [M, K]
        if cfg.weight_bits:
            qmax = 2 ** (cfg.weight_bits - 1) - 1
            absmax = w.abs().amax(dim=1)
            scale = torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax))
            self.q = torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax)
            self.w_scale = scale
        else:
            self.q, self.w_scale = w, torch.ones(w.shape[0])
        self.weight_mask = (self.q != 0).t().contiguous()  # [K, M]
        self._window: list[torch.Tensor] = []
        self._analog = False

    @property
    def weight_sparsity(self) -> float:
        return 1.0 - float(self.weight_mask.float().mean())

    def _mvm(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        binary = bool(((x == 0) | (x == 1)).all())
        if self._window and (self._window[0].shape != x.shape or binary == self._analog):
            self.flush()
        self._analog = not binary
        self._window.append((x != 0) if not binary else x.to(torch.bool))
        if len(self._window) == self.cfg.timesteps:
            self.flush()
        if self.cfg.weight_bits:
            return (x @ self.q.t()) * self.w_scale
        return F.linear(x, self.q)

    def run_window(self, spikes: torch.Tensor) -> torch.Tensor:
        """spikes[T, N, K] → out[T, N, M] for a whole window at once (honours `one_spike_mask`)."""
        self.flush()
        x = spikes.float()
        if self.cfg.one_spike_mask:
            words = mask_one_spike(pack_spikes(x), x.shape[0])
            x = torch.stack([((words >> t) & 1) for t in range(x.shape[0])]).float()
        self._window = [xt.to(torch.bool) for xt in x]
        self._analog = False
        self._cost_window()
        out = (x @ self.q.t()) * self.w_scale if self.cfg.weight_bits else F.linear(x, self.q)
        return out

    def flush(self) -> None:
        if self._window:
            self._cost_window()

    def _cost_window(self) -> None:
        spikes = torch.stack(self._window).float()
        self._window = []
        st = join_stats(spikes, self.weight_mask, self.cfg.n_pe, self.cfg.join_width, self.cfg.one_spike_mask)
        bits = self.cfg.analog_input_bits if self._analog else 1
        reuse = 1.0
        if self.geometry is not None:
            kh, kw = self.geometry.kernel
            sh, sw = self.geometry.stride
            reuse = kh * kw / (sh * sw)
        cost = design_cost(st, self.cfg, "loas", self.hw_name, input_bits=bits, a_reuse=reuse)
        cost.calls = st.timesteps
        self._record(cost)
