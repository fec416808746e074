"""Emulated layers: the common shell that turns Linear/Conv calls into matrix-vector products on hardware."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from sim_hw.cost import CostReport, LayerCost
from sim_hw.errors import BackendConfigError, HardwareStateError
from sim_hw.geometry import ConvGeometry

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

    Subclasses call `self._record(LayerCost(...))` once per call (or per flushed window). Between
    `begin_run()` and `end_run()` the costs are also collected for that span (spans may nest:
    `HardwareModel.capture()` inside another).
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.hw_name = name
        self._total = CostReport()
        self._runs: list[CostReport] = []

    def _record(self, cost: LayerCost) -> None:
        self._total.add_layer(cost)
        for run in self._runs:
            run.add_layer(cost)

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
        """Open a span: costs recorded from now on are also returned by the matching `end_run()`."""
        self._runs.append(CostReport())

    def end_run(self) -> CostReport:
        """Close the innermost open span and return what it recorded (buffered work flushed first)."""
        self.flush()
        return self._runs.pop() if self._runs else CostReport()


class MappedLayer(HardwareLayer):
    """A Linear/Conv1d/Conv2d whose product runs as `_mvm(x[N, K]) -> y[N, M]` on emulated hardware.

    Shapes: Linear x[..., K] → y[..., M]; Conv x[B, C, (H,) W] is unfolded into patches
    [B·L, C·kh·kw] (L output positions) by its `geometry` (a `ConvGeometry`; None for a Linear),
    multiplied, and laid out again as [B, M, (Ho,) Wo]. The bias [M] is added digitally.
    Crossbars hold one dense [M, K] matrix, so grouped convs and non-zero or string padding are
    refused here (the ideal backend takes them).
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
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            if module.groups != 1:
                raise BackendConfigError(
                    f"layer {name!r}: grouped/depthwise conv (groups={module.groups}) is not "
                    "mapped onto crossbars; use groups=1 or the 'ideal' backend"
                )
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise BackendConfigError(
                    f"layer {name!r}: only explicit zero padding is supported "
                    f"(padding={module.padding!r}, padding_mode={module.padding_mode!r})"
                )
        self.geometry = ConvGeometry.of(module)
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
        if self.geometry is None:
            if x.shape[-1] != self.in_features:
                raise HardwareStateError(
                    f"layer {self.hw_name!r}: input has {x.shape[-1]} features, "
                    f"the mapped weights expect {self.in_features}"
                )
            lead = x.shape[:-1]
            y = self._mvm(x.reshape(-1, self.in_features)).reshape(*lead, self.out_features)
            return y + self.bias if self.bias is not None else y
        return self._conv_forward(x, self.geometry)

    def _conv_forward(self, x: torch.Tensor, geo: ConvGeometry) -> torch.Tensor:
        if x.dim() != geo.dims + 2:
            raise HardwareStateError(
                f"layer {self.hw_name!r}: conv input must be [B, C, {'H, ' if geo.dims == 2 else ''}W], "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != geo.in_channels:
            raise HardwareStateError(
                f"layer {self.hw_name!r}: input has {x.shape[1]} channels, "
                f"the mapped kernel expects {geo.in_channels}"
            )
        size = tuple(x.shape[2:])
        y = geo.output_from_rows(self._mvm(geo.unfold(x)), size)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * geo.dims))
        return y

    def extra_repr(self) -> str:
        return f"name={self.hw_name!r}, kind={self.kind}, in={self.in_features}, out={self.out_features}"
