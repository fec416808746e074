"""The `ideal` backend: plain torch arithmetic, bit-identical to the original layers, MACs counted."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sim_hw.backend import Backend
from sim_hw.cost import CostReport, LayerCost
from sim_hw.errors import HardwareStateError
from sim_hw.geometry import ConvGeometry
from sim_hw.mapped import HardwareLayer, module_weight

__all__ = ["IdealBackend", "IdealConfig", "IdealLayer"]


@dataclass(frozen=True)
class IdealConfig:
    """No parameters: the ideal backend is the float model itself."""


class IdealLayer(HardwareLayer):
    """Calls the original module unchanged (y == module(x) exactly) and counts its MACs.

    Energy, latency and area are zero: there is no hardware to charge. As a `ProgrammableLayer`
    its weight matrix is the module's weight viewed as W [M, K] (K = C_in/G·kh·kw for a Conv):
    `mvm_transposed(e)` = e·W exactly (e [N, M] → [N, K], MACs counted), `program_update(dw)`
    adds dw to the float weight in place (zero cost), `read_weights()` is a copy of the weight.
    Learning through it updates the wrapped module, so a plain float net trains offline through
    the same interface as a device.

    Example:
        >>> layer = IdealLayer(torch.nn.Linear(8, 4), "fc")
        >>> layer.mvm_transposed(torch.ones(2, 4)).shape
        torch.Size([2, 8])
    """

    def __init__(self, module: nn.Module, name: str) -> None:
        super().__init__(name)
        self.inner = module
        weight = module_weight(module)
        self.per_output = int(weight[0].numel())
        self.in_features = self.per_output
        self.out_features = int(weight.shape[0])
        self.geometry = ConvGeometry.of(module)

    @property
    def bias(self) -> torch.Tensor | None:
        """The wrapped module's bias [M] (its parameter itself: updates land in the module)."""
        b = getattr(self.inner, "bias", None)
        return b if isinstance(b, torch.Tensor) else None

    def _weight(self) -> torch.Tensor:
        w = getattr(self.inner, "weight", None)
        if not isinstance(w, torch.Tensor):  # module_weight checked it at construction
            raise HardwareStateError(f"layer {self.hw_name!r}: the wrapped module lost its weight")
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.inner(x)
        outputs = y.numel()
        self._record(
            LayerCost(self.hw_name, "inference", {}, macs=outputs * self.per_output, utilisation=1.0)
        )
        return y

    # ----- ProgrammableLayer --------------------------------------------------------------------
    def mvm_transposed(self, e: torch.Tensor, phase: str = "learning") -> torch.Tensor:
        """e [N, M] → e·W [N, K] in float, exactly; MACs recorded as `<name>.T` in `phase`."""
        if e.shape[-1] != self.out_features:
            raise HardwareStateError(
                f"layer {self.hw_name!r}: mvm_transposed needs {self.out_features} features, got {e.shape[-1]}"
            )
        back = e @ self._weight().detach().reshape(self.out_features, -1)
        n = back.numel() // self.in_features
        self._record(LayerCost(f"{self.hw_name}.T", phase, {}, macs=n * self.in_features * self.out_features))
        return back

    @torch.no_grad()
    def program_update(self, delta_w: torch.Tensor, phase: str = "learning") -> CostReport:
        """W ← W + delta_w exactly (delta_w [M, K] or the weight shape); no energy, no latency."""
        w = self._weight()
        w.add_(delta_w.reshape(w.shape).to(w.dtype))
        cost = LayerCost(self.hw_name, phase, {}, macs=0, counts={"weights_written": float(delta_w.numel())})
        self._record(cost)
        return CostReport([cost], backend="ideal")

    def read_weights(self) -> torch.Tensor:
        """A copy of the float weight, in the module's weight shape."""
        return self._weight().detach().clone()


class IdealBackend(Backend):
    """Tag `ideal`: reference float arithmetic (the accuracy ceiling and the speed floor)."""

    kind = "ideal"

    def wrap(self, module: nn.Module, name: str, index: int) -> HardwareLayer:
        return IdealLayer(module, name)
