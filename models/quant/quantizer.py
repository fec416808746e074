"""Uniform integer weight quantizer: per-row asymmetric min-max (0 kept in range), optional groups and MSE search."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["QuantSpec", "QuantError", "fit_scale_zero", "quantize_int", "dequantize", "fake_quant", "rtn"]


class QuantError(ValueError):
    """A quantization setting or input is invalid (bits, group size, shapes, non-finite Hessian)."""


@dataclass(frozen=True)
class QuantSpec:
    """How weights become integers.

    bits: 2..8. group_size: None = one (scale, zero) per output row ("per-channel"), else per row per
    group of `group_size` consecutive input columns (GPTQ's `groupsize`, typically 128). sym: symmetric
    range with the zero point at (2^b)/2 (GPTQ's `sym`). mse: search a range shrink p ∈ (0.2, 1] under
    |·|^2.4 as GPTQ's `mse` option [IST-DASLab/gptq quant.py].
    """

    bits: int = 4
    group_size: int | None = None
    sym: bool = False
    mse: bool = False

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise QuantError(f"bits {self.bits}: supported are 2 to 8")
        if self.group_size is not None and self.group_size < 1:
            raise QuantError(f"group_size {self.group_size}: use a positive int or None (per-channel)")

    @property
    def maxq(self) -> int:
        return (1 << self.bits) - 1


def quantize_int(w: Tensor, scale: Tensor, zero: Tensor, maxq: int) -> Tensor:
    """q = clamp(round(w / scale) + zero, 0, maxq) (float tensor of integers)."""
    return torch.clamp(torch.round(w / scale) + zero, 0, maxq)


def dequantize(q: Tensor, scale: Tensor, zero: Tensor) -> Tensor:
    """ŵ = scale · (q − zero)."""
    return scale * (q - zero)


def fake_quant(w: Tensor, scale: Tensor, zero: Tensor, maxq: int) -> Tensor:
    return dequantize(quantize_int(w, scale, zero, maxq), scale, zero)


def fit_scale_zero(w: Tensor, spec: QuantSpec) -> tuple[Tensor, Tensor]:
    """Per-row (scale, zero), each [rows, 1], for the columns in `w` [rows, cols].

    Asymmetric: scale = (max − min)/(2^b − 1), zero = round(−min/scale), with min <= 0 <= max so that 0 is
    representable exactly [GPTQ quant.py `find_params`]. All-zero rows get the range [−1, 1].
    """
    maxq = spec.maxq
    xmin = torch.clamp(w.min(1).values, max=0)
    xmax = torch.clamp(w.max(1).values, min=0)
    if spec.sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        xmin = torch.where(xmin < 0, -xmax, xmin)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both0, torch.full_like(xmin, -1.0), xmin)
    xmax = torch.where(both0, torch.full_like(xmax, 1.0), xmax)

    def params(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        s = (hi - lo) / maxq
        z = torch.full_like(s, (maxq + 1) / 2) if spec.sym else torch.round(-lo / s)
        return s, z

    scale, zero = params(xmin, xmax)
    if spec.mse:
        best = torch.full_like(scale, float("inf"))
        for i in range(100):  # GPTQ defaults: grid 100, maxshrink 0.8, norm 2.4
            p = 1 - i / 100
            if p <= 0.2:
                break
            s1, z1 = params(p * xmin, p * xmax)
            err = (fake_quant(w, s1[:, None], z1[:, None], maxq) - w).abs().pow(2.4).sum(1)
            better = err < best
            best = torch.where(better, err, best)
            scale, zero = torch.where(better, s1, scale), torch.where(better, z1, zero)
    return scale[:, None], zero[:, None]


def rtn(w: Tensor, spec: QuantSpec) -> tuple[Tensor, Tensor, Tensor]:
    """Round-to-nearest: (integers [r, c], scale [r, G], zero [r, G]) with G groups (1 if per-channel)."""
    gs = spec.group_size or w.shape[1]
    q = torch.empty_like(w)
    scales, zeros = [], []
    for j in range(0, w.shape[1], gs):
        s, z = fit_scale_zero(w[:, j : j + gs], spec)
        q[:, j : j + gs] = quantize_int(w[:, j : j + gs], s, z, spec.maxq)
        scales.append(s)
        zeros.append(z)
    return q, torch.cat(scales, 1), torch.cat(zeros, 1)
