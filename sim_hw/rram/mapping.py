"""Weights → signed integers → bit slices → differential-pair digits, and back."""

from __future__ import annotations

import torch

__all__ = ["quantize_weights", "to_digits", "digits_to_int", "round_update"]


def quantize_weights(w: torch.Tensor, bits: int, scaling: str) -> tuple[torch.Tensor, torch.Tensor]:
    """w[M, K] → (q[M, K] integer-valued float, scale[M]) with w ≈ q·scale and |q| ≤ 2**(bits−1) − 1.

    `scaling` "channel" gives one scale per output row, "layer" one for the whole matrix.
    """
    qmax = 2 ** (bits - 1) - 1
    absmax = w.abs().amax(dim=1) if scaling == "channel" else w.abs().amax().expand(w.shape[0])
    scale = torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax))
    q = torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax)
    return q, scale.clone()


def to_digits(q: torch.Tensor, bits_per_cell: int, n_slices: int) -> torch.Tensor:
    """q[M, K] → digits[S, 2, K, M]: slice s of |q| (base 2**bits_per_cell) on the + device if q > 0,
    on the − device if q < 0; the other device of the pair holds 0."""
    levels = 2**bits_per_cell
    mag = q.abs().to(torch.int64).t()  # [K, M]
    pos = q.t() > 0
    out = torch.zeros((n_slices, 2, *mag.shape), dtype=torch.int64)
    for s in range(n_slices):
        d = (mag // levels**s) % levels
        out[s, 0] = torch.where(pos, d, 0)
        out[s, 1] = torch.where(pos, 0, d)
    return out


def digits_to_int(digits: torch.Tensor, bits_per_cell: int) -> torch.Tensor:
    """digits[S, 2, K, M] → q[M, K] (inverse of `to_digits`)."""
    levels = 2**bits_per_cell
    weights = torch.tensor([float(levels**s) for s in range(digits.shape[0])]).view(-1, 1, 1)
    diff = (digits[:, 0] - digits[:, 1]).to(torch.float64)
    return (diff * weights).sum(0).t().to(torch.float32)


def round_update(x: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Round a real-valued update (in units of the weight LSB) to integers, nearest or stochastically
    (E[round(x)] = x, so updates smaller than one LSB still move weights on average)."""
    if mode == "nearest":
        return torch.round(x)
    floor = torch.floor(x)
    return floor + (torch.rand(x.shape, generator=gen) < (x - floor)).to(x.dtype)
