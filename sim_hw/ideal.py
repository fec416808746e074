"""The `ideal` backend: plain torch arithmetic, bit-identical to the original layers, MACs counted."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sim_hw.backend import Backend
from sim_hw.cost import LayerCost
from sim_hw.mapped import HardwareLayer, module_weight

__all__ = ["IdealBackend", "IdealConfig", "IdealLayer"]


@dataclass(frozen=True)
class IdealConfig:
    """No parameters: the ideal backend is the float model itself."""


class IdealLayer(HardwareLayer):
    """Calls the original module unchanged (y == module(x) exactly) and counts its MACs.

    Energy, latency and area are zero: there is no hardware to charge.
    """

    def __init__(self, module: nn.Module, name: str) -> None:
        super().__init__(name)
        self.inner = module
        self.per_output = int(module_weight(module)[0].numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.inner(x)
        outputs = y.numel()
        self._record(
            LayerCost(self.hw_name, "inference", {}, macs=outputs * self.per_output, utilisation=1.0)
        )
        return y


class IdealBackend(Backend):
    """Tag `ideal`: reference float arithmetic (the accuracy ceiling and the speed floor)."""

    kind = "ideal"

    def wrap(self, module: nn.Module, name: str, index: int) -> HardwareLayer:
        return IdealLayer(module, name)
