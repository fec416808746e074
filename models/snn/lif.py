"""Leaky integrate-and-fire neurons: a pure step function on typed records and a thin nn.Module."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .surrogate import SURROGATES, heaviside

__all__ = ["LIFParameters", "LIFState", "lif_integrate", "lif_fire", "lif_step", "LIF", "RESETS"]

RESETS = ("subtract", "zero")


class LIFParameters(NamedTuple):
    """Parameters of a discrete-time LIF neuron (dimensionless: dt = one step, potentials in units of v_th).

    beta: membrane decay per step in [0, 1] (scalar or per neuron); beta = exp(-dt/τ_mem).
    v_th: firing threshold. reset: "subtract" (soft, v -= v_th) or "zero" (hard, v = 0).
    surrogate: "atan" or "fast_sigmoid"; alpha: its sharpness (None = the surrogate's default).
    detach_reset: keep the reset out of the gradient, as snnTorch does by default.
    """

    beta: Tensor | float = 0.9
    v_th: Tensor | float = 1.0
    reset: str = "subtract"
    surrogate: str = "atan"
    alpha: float | None = None
    detach_reset: bool = True


class LIFState(NamedTuple):
    """Membrane potential after the reset of the last step, shaped like the layer's output [B, ...]."""

    v: Tensor


def lif_integrate(x: Tensor, state: LIFState, p: LIFParameters) -> Tensor:
    """Pre-spike membrane v' = beta·v + x (the value compared with the threshold)."""
    return p.beta * state.v + x


def lif_fire(v_pre: Tensor, p: LIFParameters) -> tuple[Tensor, LIFState]:
    """Spike s = Θ(v' − v_th) and reset: subtract → v' − s·v_th, zero → v'·(1 − s).

    Without autograd (inference, ONNX export) the spike is a plain comparison, so the exported graph
    is `Greater` + `Cast` [SCIENCE 4.6].
    """
    if p.reset not in RESETS:
        raise ValueError(f"LIF reset {p.reset!r}: use one of {RESETS}")
    if torch.is_grad_enabled() and v_pre.requires_grad:
        fn, default_alpha = SURROGATES[p.surrogate]
        s = fn(v_pre - p.v_th, default_alpha if p.alpha is None else p.alpha)
    else:
        s = heaviside(v_pre - p.v_th)
    r = s.detach() if p.detach_reset else s
    v = v_pre - r * p.v_th if p.reset == "subtract" else v_pre * (1.0 - r)
    return s, LIFState(v)


def lif_step(x: Tensor, state: LIFState, p: LIFParameters) -> tuple[Tensor, LIFState]:
    """One LIF step: (input current, state, params) → (spikes, new state). Pure: no module state."""
    return lif_fire(lif_integrate(x, state, p), p)


class LIF(nn.Module):
    """LIF neuron layer: v' = β·v + x; s = Θ(v' − v_th); v ← v' − s·v_th (subtract) or v'·(1 − s) (zero).

    Shapes: x [B, ...] → spikes [B, ...] (one time step; loop over T outside). β is a buffer, or a
    parameter clamped to [0, 1] when `learn_beta` (shape `beta_shape`, e.g. (n,) for per-neuron decay).

    Example::

        lif = LIF(beta=0.9)
        state = lif.init_state(torch.zeros(8, 100))
        for x_t in x:                       # x: [T, 8, 100]
            s_t, state = lif(x_t, state)
    """

    beta: Tensor  # a buffer, or a Parameter when learn_beta
    v_th: Tensor

    def __init__(
        self,
        beta: float = 0.9,
        v_th: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "atan",
        alpha: float | None = None,
        learn_beta: bool = False,
        beta_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise ValueError(f"LIF reset {reset!r}: use one of {RESETS}")
        if surrogate not in SURROGATES:
            raise ValueError(f"LIF surrogate {surrogate!r}: use one of {sorted(SURROGATES)}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"LIF beta {beta}: must lie in [0, 1] (beta = exp(-dt/tau))")
        b = torch.full(beta_shape, float(beta))
        if learn_beta:
            self.beta = nn.Parameter(b)
        else:
            self.register_buffer("beta", b)
        self.register_buffer("v_th", torch.tensor(float(v_th)))
        self.reset, self.surrogate, self.alpha = reset, surrogate, alpha

    def params(self) -> LIFParameters:
        return LIFParameters(self.beta.clamp(0.0, 1.0), self.v_th, self.reset, self.surrogate, self.alpha)

    def init_state(self, like: Tensor) -> LIFState:
        return LIFState(torch.zeros_like(like))

    def forward(self, x: Tensor, state: LIFState | None = None) -> tuple[Tensor, LIFState]:
        return lif_step(x, self.init_state(x) if state is None else state, self.params())

    def extra_repr(self) -> str:
        return f"reset={self.reset}, surrogate={self.surrogate}, learn_beta={isinstance(self.beta, nn.Parameter)}"
