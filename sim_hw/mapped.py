"""Emulated layers: the common shell that turns Linear/Conv calls into matrix-vector products on hardware."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sim_hw.cost import CostReport, LayerCost
from sim_hw.errors import BackendConfigError, HardwareStateError

__all__ = ["HardwareLayer", "MappedLayer", "SUPPORTED_MODULES", "weight_matrix", "module_weight"]

SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


def module_weight(module: nn.Module) -> torch.Tensor:
    """The `weight` tensor of a Linear/Conv module (detached)."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor):
        raise BackendConfigError(f"{type(module).__name__} has no weight tensor to map")
    return w.detach()


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The layer's weights as the [M outputs, K inputs] matrix the hardware holds (a detached copy)."""
    w = module_weight(module)
    return w.reshape(w.shape[0], -1).clone()


class HardwareLayer(nn.Module):
    """Base of every emulated layer: keeps the cost of the calls since the last reset.

    Subclasses call `self._record(LayerCost(...))` once per call (or per flushed window).
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.hw_name = name
        self._total = CostReport()
        self._run: CostReport | None = None

    def _record(self, cost: LayerCost) -> None:
        self._total.add_layer(cost)
        if self._run is not None:
            self._run.add_layer(cost)

    def flush(self) -> None:
        """Cost any work still buffered (LoAS groups timesteps); a no-op for most layers."""

    def cost(self) -> CostReport:
        self.flush()
        return CostReport(self._total.layers)

    def reset_cost(self) -> None:
        self.flush()
        self._total = CostReport()

    def age(self, seconds: float) -> None:
        """Let `seconds` pass since programming (drift); a no-op where the hardware does not drift."""

    def begin_run(self) -> None:
        self._run = CostReport()

    def end_run(self) -> CostReport:
        self.flush()
        run, self._run = self._run or CostReport(), None
        return run


class MappedLayer(HardwareLayer):
    """A Linear/Conv1d/Conv2d whose product runs as `_mvm(x[N, K]) -> y[N, M]` on emulated hardware.

    Shapes: Linear x[..., K] → y[..., M]; Conv x[B, C, (H,) W] is unfolded into patches
    [B·L, C·kh·kw] (L output positions), multiplied, and folded back. The bias is added digitally.
    """

    bias: torch.Tensor | None

    def __init__(self, module: nn.Module, name: str) -> None:
        super().__init__(name)
        if not isinstance(module, SUPPORTED_MODULES):
            raise BackendConfigError(
                f"layer {name!r}: {type(module).__name__} cannot be mapped; "
                f"supported: {', '.join(m.__name__ for m in SUPPORTED_MODULES)}"
            )
        self.kind = type(module).__name__.lower()
        self.conv: dict[str, Any] | None = None
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            conv: Any = module
            if conv.groups != 1:
                raise BackendConfigError(
                    f"layer {name!r}: grouped/depthwise conv (groups={module.groups}) is not "
                    "mapped onto crossbars; use groups=1 or the 'ideal' backend"
                )
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise BackendConfigError(
                    f"layer {name!r}: only explicit zero padding is supported "
                    f"(padding={module.padding!r}, padding_mode={module.padding_mode!r})"
                )
            two = isinstance(module, nn.Conv2d)

            def pair(v: Any) -> tuple[int, int]:
                return (int(v[0]), int(v[1])) if two else (1, int(v[0]))

            self.conv = {
                "kernel": pair(conv.kernel_size),
                "stride": pair(conv.stride),
                "padding": (0, int(conv.padding[0])) if not two else pair(conv.padding),
                "dilation": pair(conv.dilation),
                "two_d": two,
            }
        weight = module_weight(module)
        self.in_features = int(weight[0].numel())
        self.out_features = int(weight.shape[0])
        b = getattr(module, "bias", None)
        bias = b.detach().clone() if isinstance(b, torch.Tensor) else None
        self.register_buffer("bias", bias)

    @abstractmethod
    def _mvm(self, x: torch.Tensor) -> torch.Tensor:
        """x[N, K] → y[N, M] on the hardware, recording the cost of the call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            if x.shape[-1] != self.in_features:
                raise HardwareStateError(
                    f"layer {self.hw_name!r}: input has {x.shape[-1]} features, "
                    f"the mapped weights expect {self.in_features}"
                )
            lead = x.shape[:-1]
            y = self._mvm(x.reshape(-1, self.in_features)).reshape(*lead, self.out_features)
            return y + self.bias if self.bias is not None else y
        return self._conv_forward(x)

    def _conv_forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        assert c is not None  # internal invariant: only called for convs
        two = c["two_d"]
        x4 = x if two else x.unsqueeze(-2)
        if x4.dim() != 4:
            raise HardwareStateError(
                f"layer {self.hw_name!r}: conv input must be [B, C, {'H, ' if two else ''}W], "
                f"got shape {tuple(x.shape)}"
            )
        b, _, h, w = x4.shape
        cols = F.unfold(x4, c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"])
        if cols.shape[1] != self.in_features:
            raise HardwareStateError(
                f"layer {self.hw_name!r}: input has {x4.shape[1]} channels, "
                f"the mapped kernel expects {self.in_features // (c['kernel'][0] * c['kernel'][1])}"
            )
        ho = (h + 2 * c["padding"][0] - c["dilation"][0] * (c["kernel"][0] - 1) - 1) // c["stride"][0] + 1
        wo = (w + 2 * c["padding"][1] - c["dilation"][1] * (c["kernel"][1] - 1) - 1) // c["stride"][1] + 1
        patches = cols.transpose(1, 2).reshape(-1, self.in_features)
        y = self._mvm(patches).reshape(b, ho * wo, self.out_features).transpose(1, 2)
        y = y.reshape(b, self.out_features, ho, wo)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y if two else y.squeeze(-2)

    def extra_repr(self) -> str:
        return f"name={self.hw_name!r}, kind={self.kind}, in={self.in_features}, out={self.out_features}"
