"""The gradient maths of one layer for on-device learning: its input rows, outer products and device calls."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sim_hw.cost import CostReport
from sim_hw.geometry import ConvGeometry
from sim_hw.ideal import IdealLayer
from sim_hw.mapped import SUPPORTED_MODULES, HardwareLayer
from sim_hw.programmable import ProgrammableLayer

__all__ = ["AdaptError", "LayerOps"]


class AdaptError(ValueError):
    """A model or backend cannot be adapted on the device (unsupported layer, backend or shape)."""


class LayerOps:
    """The crossbar view of one Linear/Conv layer, for on-device learning.

    A layer computes y[N, M] = x[N, K]·Wᵀ per row, where a Linear has one row per sample and a Conv
    one row per output position (its unfolded input patch, laid out by the layer's `ConvGeometry`),
    exactly as the crossbar sees it. `rows_in(x)` gives x[N, K], `rows_out(g)` lays a gradient on
    the output out as g[N, M] in the same order, so the weight gradient is Σ_rows g ⊗ x =
    g_rowsᵀ·x_rows [M, K] (the outer products the crossbar would program). The device work is the
    layer's (`ProgrammableLayer`): `transposed(g, like)` is g·W read back through it (BP's backward
    read; exact on the ideal backend), returned in the shape of the layer's input `like`;
    `program(dw, db)` adds dw [M, K] through `program_update` and db [M] to the digital bias.

    A plain nn.Linear/Conv1d/Conv2d (offline training in float) is wrapped in an `IdealLayer`, so
    its updates land in the module itself.

    Example::

        ops = LayerOps(hw_model.layer("layers.0.synapse"))
        dw = ops.weight_grad(x_t, g_t)          # [M, K]
        cost = ops.program(-0.01 * dw, None)
    """

    def __init__(self, layer: ProgrammableLayer | nn.Module, name: str = "") -> None:
        if isinstance(layer, SUPPORTED_MODULES):
            layer = IdealLayer(layer, name)  # a plain float layer (offline training): the ideal backend
        if not isinstance(layer, ProgrammableLayer):
            owner = layer.hw_name if isinstance(layer, HardwareLayer) else name
            raise AdaptError(
                f"layer {owner!r} ({type(layer).__name__}) cannot learn on the device: "
                "use the 'rram' backend (conductance programming) or 'ideal' (float reference)"
            )
        geometry = layer.geometry
        if geometry is not None and (geometry.groups != 1 or geometry.padding_mode != "zeros"):
            raise AdaptError(
                f"layer {layer.hw_name!r}: a conv with groups={geometry.groups} and padding_mode="
                f"{geometry.padding_mode!r} cannot be adapted (Linear, or Conv1d/2d with groups=1 and "
                "zero padding only)"
            )
        self.layer: ProgrammableLayer = layer
        self.name = layer.hw_name
        self.geometry: ConvGeometry | None = geometry
        self.in_features, self.out_features = layer.in_features, layer.out_features

    # ----- layout ---------------------------------------------------------------------------------
    def rows_in(self, x: Tensor) -> Tensor:
        """The layer input [B, ...] as crossbar input rows [N, K]."""
        if self.geometry is None:
            return x.reshape(-1, self.in_features)
        return self.geometry.unfold(x)

    def rows_out(self, g: Tensor) -> Tensor:
        """A gradient on the layer output [B, M, ...] (or [B, M]) as rows [N, M] matching `rows_in`."""
        if self.geometry is None:
            return g.reshape(-1, self.out_features)
        return self.geometry.output_rows(g)

    # ----- learning primitives --------------------------------------------------------------------
    def weight_grad(self, x: Tensor, g: Tensor) -> Tensor:
        """Σ over rows of g ⊗ x: the [M, K] gradient of Σ g·y for input x [B, ...] and output gradient g."""
        return self.rows_out(g).t() @ self.rows_in(x)

    def bias_grad(self, g: Tensor) -> Tensor:
        """Σ over rows of g: the [M] gradient of Σ g·y with respect to the bias."""
        return self.rows_out(g).sum(0)

    def transposed(self, g: Tensor, like: Tensor) -> Tensor:
        """The gradient on the input (shape of `like`) for output gradient g: g·W through the hardware."""
        back = self.layer.mvm_transposed(self.rows_out(g), phase="learning")
        if self.geometry is None:
            return back.reshape(like.shape)
        return self.geometry.fold(back, tuple(like.shape[2:]))

    def weight(self) -> Tensor:
        """The weights the hardware holds now, [M, K] (noise and drift included on a crossbar)."""
        return self.layer.read_weights().reshape(self.out_features, -1)

    @torch.no_grad()
    def program(self, dw: Tensor | None, db: Tensor | None) -> CostReport:
        """Add dw [M, K] to the weights (conductance programming on a crossbar) and db [M] to the
        digital bias; returns the learning-phase cost of the write."""
        bias = self.layer.bias
        if db is not None and bias is not None:
            bias.add_(db.to(bias.dtype))
        if dw is None:
            return CostReport()
        return self.layer.program_update(dw, phase="learning")
