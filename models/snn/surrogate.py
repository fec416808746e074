"""Surrogate gradients: a Heaviside spike forward, a smooth derivative backward."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["atan", "fast_sigmoid", "heaviside", "SURROGATES", "surrogate_grad"]


def heaviside(v: Tensor) -> Tensor:
    """Θ(v): 1.0 where v > 0 else 0.0 (strict, as ONNX `Greater` + `Cast` computes it)."""
    return (v > 0).to(v.dtype)


def surrogate_grad(name: str, v: Tensor, alpha: float) -> Tensor:
    """dΘ/dv as the named surrogate sees it (used by the autograd functions and by DFA-style rules).

    - ``atan``: (α/2) / (1 + (π α v / 2)²), α = 2 by default [snnTorch 1.0 `ATan`, SCIENCE 4.6].
    - ``fast_sigmoid``: 1 / (α |v| + 1)², α = 25 by default [SuperSpike / snnTorch `fast_sigmoid` slope 25].
    """
    if name == "atan":
        return (alpha / 2) / (1 + (math.pi * alpha * v / 2) ** 2)
    if name == "fast_sigmoid":
        return 1.0 / (alpha * v.abs() + 1.0) ** 2
    raise ValueError(f"unknown surrogate {name!r}: use one of {sorted(SURROGATES)}")


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, v: Tensor, name: str, alpha: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.name, ctx.alpha = name, alpha
        return heaviside(v)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (v,) = ctx.saved_tensors
        return grad * surrogate_grad(ctx.name, v, ctx.alpha), None, None


def atan(v: Tensor, alpha: float = 2.0) -> Tensor:
    """Spike Θ(v) with the arctan surrogate derivative (α = 2, snnTorch's default)."""
    spikes: Tensor = _Spike.apply(v, "atan", alpha)  # type: ignore[no-untyped-call]  # torch 2.13: Function.apply is unannotated
    return spikes


def fast_sigmoid(v: Tensor, alpha: float = 25.0) -> Tensor:
    """Spike Θ(v) with the fast-sigmoid surrogate derivative 1/(α|v|+1)² (slope α = 25)."""
    spikes: Tensor = _Spike.apply(v, "fast_sigmoid", alpha)  # type: ignore[no-untyped-call]  # torch 2.13: Function.apply is unannotated
    return spikes


#: name → (spike function, default α); chosen once when a neuron is built.
SURROGATES: dict[str, tuple[Any, float]] = {"atan": (atan, 2.0), "fast_sigmoid": (fast_sigmoid, 25.0)}
