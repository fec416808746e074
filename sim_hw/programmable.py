"""ProgrammableLayer: what an emulated layer offers on-device learning (transposed reads, weight updates)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from sim_hw.cost import CostReport
from sim_hw.geometry import ConvGeometry

__all__ = ["ProgrammableLayer"]


@runtime_checkable
class ProgrammableLayer(Protocol):
    """An emulated Linear/Conv layer that a learning rule can read transposed and reprogram.

    The layer holds a weight matrix W [M, K] (M = `out_features`; K = `in_features`: a Linear's
    inputs, or C_in/G·kh·kw for a Conv) and computes y_rows [N, M] = x_rows [N, K]·Wᵀ + b, with one
    row per sample (Linear) or per output position (Conv, rows laid out by `geometry`). Weights
    are in the original module's units; `bias` [M] is digital (a learning rule adds to it in place).

    - `mvm_transposed(e)`: e [N, M] → e·W [N, K] (column j of the result is Σ_m e[:, m]·W[m, j]),
      the backward product of BP, read through the same devices and costed in `phase`.
    - `program_update(dw)`: W ← W + dw for dw [M, K] (or the module's weight shape), as the device
      can realise it (conductance pulses on RRAM: rounded, noisy, clipped); returns the write's
      `CostReport` (pJ, ns), also recorded on the layer in `phase`.
    - `read_weights()`: the weights the device holds now, in the original module's weight shape
      (noise, drift and faults included on RRAM).

    Implemented by `sim_hw.rram.RRAMLayer` (devices) and `sim_hw.ideal.IdealLayer` (exact float
    arithmetic, zero cost).

    Example::

        layer = make_backend("rram").prepare(nn.Linear(16, 4)).layer("layer")
        assert isinstance(layer, ProgrammableLayer)
        g_in = layer.mvm_transposed(torch.randn(8, 4))          # [8, 16]
        cost = layer.program_update(-0.01 * torch.randn(4, 16))
    """

    @property
    def hw_name(self) -> str:
        """The layer's name in its model (e.g. "layers.0.synapse"); names its cost entries."""
        ...

    @property
    def in_features(self) -> int:
        """K: the length of one weight-matrix row."""
        ...

    @property
    def out_features(self) -> int:
        """M: output channels (rows of the weight matrix)."""
        ...

    @property
    def geometry(self) -> ConvGeometry | None:
        """How a Conv's input is unfolded into rows; None for a Linear."""
        ...

    @property
    def bias(self) -> Tensor | None:
        """The digital bias [M] (None when the layer has none)."""
        ...

    def mvm_transposed(self, e: Tensor, phase: str = "learning") -> Tensor:
        """e [N, M] → e·W [N, K] through the device, costed in `phase`."""
        ...

    def program_update(self, delta_w: Tensor, phase: str = "learning") -> CostReport:
        """Add delta_w ([M, K] or the weight shape) to the weights; the cost of the write."""
        ...

    def read_weights(self) -> Tensor:
        """The weights held now, in the original module's weight shape (a copy)."""
        ...
