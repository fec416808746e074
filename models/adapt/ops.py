"""What a learning rule may do to one emulated layer: read its input rows, read it transposed, program it."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sim_hw.cost import CostReport, LayerCost
from sim_hw.ideal import IdealLayer
from sim_hw.mapped import HardwareLayer, MappedLayer

__all__ = ["AdaptError", "LayerOps"]


class AdaptError(ValueError):
    """A model or backend cannot be adapted on the device (unsupported layer, backend or shape)."""


class LayerOps:
    """The crossbar view of one Linear/Conv layer mapped onto a backend, for on-device learning.

    A layer computes y[N, M] = x[N, K]·Wᵀ per row, where a Linear has one row per sample and a Conv
    one row per output position (its unfolded input patch), exactly as the crossbar sees it.
    `rows_in(x)` gives x[N, K], `rows_out(g)` lays a gradient on the output out as g[N, M] in the
    same order, so the weight gradient is g_rowsᵀ·x_rows [M, K] (the outer products the crossbar
    would program). `transposed(g, like)` is gᵀ·W read back through the devices (BP's backward
    read; exact on the ideal backend), returned in the shape of the layer's input `like`.
    `program(dw, db)` adds dw [M, K] as conductance programming pulses and db digitally.

    Example::

        ops = LayerOps(hw_model.layer("layers.0.synapse"))
        dw = ops.weight_grad(x_t, g_t)          # [M, K]
        cost = ops.program(-0.01 * dw, None)
    """

    def __init__(self, layer: HardwareLayer | nn.Module, name: str = "") -> None:
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            layer = _Float(layer, name)  # a plain float layer (offline training): same as the ideal backend
        self.layer = layer
        self.name = layer.hw_name if isinstance(layer, HardwareLayer) else name
        if isinstance(layer, (IdealLayer, _Float)):
            mod = layer.inner
            self.kind = "ideal"
            self.conv = _conv_of(mod)
            self.in_features = int(mod.weight[0].numel())
            self.out_features = int(mod.weight.shape[0])
        elif (
            isinstance(layer, MappedLayer)
            and hasattr(layer, "program_update")
            and hasattr(layer, "mvm_transposed")
        ):
            self.kind = "crossbar"
            self.conv = layer.conv
            self.in_features, self.out_features = layer.in_features, layer.out_features
        else:
            raise AdaptError(
                f"layer {layer.hw_name!r} ({type(layer).__name__}) cannot learn on the device: "
                "use the 'rram' backend (conductance programming) or 'ideal' (float reference)"
            )

    # ----- layout ---------------------------------------------------------------------------------
    def rows_in(self, x: Tensor) -> Tensor:
        """The layer input [B, ...] as crossbar input rows [N, K]."""
        if self.conv is None:
            return x.reshape(-1, self.in_features)
        c = self.conv
        x4 = x if c["two_d"] else x.unsqueeze(-2)
        cols = F.unfold(x4, c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"])
        return cols.transpose(1, 2).reshape(-1, self.in_features)

    def rows_out(self, g: Tensor) -> Tensor:
        """A gradient on the layer output [B, M, ...] (or [B, M]) as rows [N, M] matching `rows_in`."""
        if self.conv is None:
            return g.reshape(-1, self.out_features)
        return g.reshape(g.shape[0], self.out_features, -1).transpose(1, 2).reshape(-1, self.out_features)

    # ----- learning primitives --------------------------------------------------------------------
    def weight_grad(self, x: Tensor, g: Tensor) -> Tensor:
        """Σ over rows of g ⊗ x: the [M, K] gradient of Σ g·y for input x [B, ...] and output gradient g."""
        return self.rows_out(g).t() @ self.rows_in(x)

    def bias_grad(self, g: Tensor) -> Tensor:
        return self.rows_out(g).sum(0)

    def transposed(self, g: Tensor, like: Tensor) -> Tensor:
        """The gradient on the input (shape of `like`) for output gradient g: gᵀ·W through the hardware."""
        rows = self.rows_out(g)
        if self.kind == "ideal":
            back = rows @ self.layer.inner.weight.detach().reshape(self.out_features, -1)  # type: ignore[union-attr]
        else:
            back = self.layer.mvm_transposed(rows, phase="learning")  # type: ignore[operator]
        if self.conv is None:
            return back.reshape(like.shape)
        c = self.conv
        size = tuple(like.shape[2:]) if c["two_d"] else (1, like.shape[-1])
        b = like.shape[0]
        cols = back.reshape(b, -1, self.in_features).transpose(1, 2)
        out = F.fold(
            cols, size, c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"]
        )
        return out if c["two_d"] else out.squeeze(-2)

    def weight(self) -> Tensor:
        """The weights the hardware holds now, [M, K] (noise and drift included on a crossbar)."""
        if self.kind == "ideal":
            return self.layer.inner.weight.detach().reshape(self.out_features, -1).clone()  # type: ignore[union-attr]
        return self.layer.read_weights().reshape(self.out_features, -1)  # type: ignore[operator]

    @torch.no_grad()
    def program(self, dw: Tensor | None, db: Tensor | None) -> CostReport:
        """Add dw [M, K] to the weights (conductance programming on a crossbar) and db [M] to the
        digital bias; returns the learning-phase cost of the write."""
        bias = self.layer.inner.bias if self.kind == "ideal" else self.layer.bias  # type: ignore[union-attr]
        if db is not None and bias is not None:
            bias.add_(db.to(bias.dtype))
        if dw is None:
            return CostReport()
        if self.kind == "ideal":
            w = self.layer.inner.weight  # type: ignore[union-attr]
            w.add_(dw.reshape(w.shape).to(w.dtype))
            return CostReport(
                [LayerCost(self.name, "learning", {}, macs=0, counts={"weights_written": float(dw.numel())})],
                backend="ideal",
            )
        report: CostReport = self.layer.program_update(dw, phase="learning")  # type: ignore[operator]
        return report


class _Float:
    """A plain nn.Linear/Conv seen through the same interface as the ideal backend's layer."""

    def __init__(self, module: nn.Module, name: str) -> None:
        self.inner, self.hw_name = module, name


def _conv_of(mod: Any) -> dict[str, Any] | None:
    """The unfold parameters of an nn.Conv1d/Conv2d (as MappedLayer keeps them), None for Linear."""
    if isinstance(mod, torch.nn.Linear):
        return None
    if (
        not isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d))
        or mod.groups != 1
        or isinstance(mod.padding, str)
    ):
        raise AdaptError(
            f"{type(mod).__name__} layers cannot be adapted (Linear, Conv1d/2d with groups=1 and "
            "explicit padding only)"
        )
    two = isinstance(mod, torch.nn.Conv2d)

    def pair(v: Any) -> tuple[int, int]:
        return (int(v[0]), int(v[1])) if two else (1, int(v[0]))

    return {
        "kernel": pair(mod.kernel_size),
        "stride": pair(mod.stride),
        "padding": pair(mod.padding) if two else (0, int(mod.padding[0])),
        "dilation": pair(mod.dilation),
        "two_d": two,
    }
