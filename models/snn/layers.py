"""Spiking layers: a synapse (Linear or Conv) feeding a LIF neuron, stepped one time step at a time."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from .lif import LIF, LIFState, lif_fire

__all__ = ["LayerStep", "SpikingLayer", "SpikingLinear", "SpikingConv1d", "SpikingConv2d"]


class LayerStep(NamedTuple):
    """One layer, one step: output spikes, pre-reset membrane (compared with v_th), and the new state."""

    spikes: Tensor
    membrane: Tensor
    state: LIFState


class SpikingLayer(nn.Module):
    """synapse → LIF: I = synapse(x_t); v' = β·v + I; s = Θ(v' − v_th); reset.

    `synapse` is any module mapping [B, ...in] → [B, ...out] (nn.Linear, nn.Conv1d, nn.Conv2d); it is
    kept as the attribute `synapse` so quantizers and pruners find its weight. Shapes per step:
    x [B, ...in] → spikes, membrane [B, ...out].
    """

    def __init__(
        self,
        synapse: nn.Module,
        beta: float = 0.9,
        v_th: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "atan",
        learn_beta: bool = False,
    ) -> None:
        super().__init__()
        self.synapse = synapse
        self.lif = LIF(beta=beta, v_th=v_th, reset=reset, surrogate=surrogate, learn_beta=learn_beta)

    def forward(self, x: Tensor, state: LIFState | None = None) -> LayerStep:
        current = self.synapse(x)
        if state is None:
            state = self.lif.init_state(current)
        p = self.lif.params()
        v_pre = p.beta * state.v + current
        s, new_state = lif_fire(v_pre, p)
        return LayerStep(s, v_pre, new_state)


class SpikingLinear(SpikingLayer):
    """Linear synapse + LIF. x [B, in] → spikes [B, out]. Example: ``SpikingLinear(6, 64)(x_t)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **lif: object) -> None:
        super().__init__(nn.Linear(in_features, out_features, bias=bias), **lif)  # type: ignore[arg-type]


class SpikingConv1d(SpikingLayer):
    """Conv1d synapse ('same' padding) + LIF. x [B, C_in, L] → spikes [B, C_out, L]."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True, **lif: object
    ) -> None:
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        super().__init__(conv, **lif)  # type: ignore[arg-type]


class SpikingConv2d(SpikingLayer):
    """Conv2d synapse ('same' padding) + LIF. x [B, C_in, H, W] → spikes [B, C_out, H, W]."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True, **lif: object
    ) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        super().__init__(conv, **lif)  # type: ignore[arg-type]
