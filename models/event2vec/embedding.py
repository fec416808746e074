"""event2vec's event embedding: learned (polarity, x) and (polarity, y) tables with neighbour smoothing, plus time."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["AxisEmbedding", "EventEmbedding", "TIME_MODES"]

TIME_MODES = ("add", "fourier")


class AxisEmbedding(nn.Module):
    """Embedding of (p, c) for one coordinate axis: e(p, c) = Σ_{k=−K..K} w_k · T[p, c + k].

    T is a learned table [2, size, dim]; the neighbour weights w (2K + 1) start at exp(−k²/2), so nearby
    coordinates get similar vectors from the start (event2vec v1, Fang & Panda; K = 2 there). Neighbours
    outside the sensor are dropped. Shapes: p, c [B, N] (long) → [B, N, dim].
    """

    offsets: Tensor

    def __init__(self, size: int, dim: int, neighbours: int = 2) -> None:
        super().__init__()
        self.size, self.k = int(size), int(neighbours)
        self.table = nn.Parameter(torch.randn(2, self.size, dim) * 0.5)
        offs = torch.arange(-self.k, self.k + 1, dtype=torch.float32)
        self.weights = nn.Parameter(torch.exp(-(offs**2) / 2))
        self.register_buffer("offsets", torch.arange(-self.k, self.k + 1))

    def forward(self, p: Tensor, c: Tensor) -> Tensor:
        idx = c.unsqueeze(-1) + self.offsets  # [B, N, 2K+1]
        valid = (idx >= 0) & (idx < self.size)
        rows = self.table[p.unsqueeze(-1).expand_as(idx), idx.clamp(0, self.size - 1)]  # [B, N, 2K+1, dim]
        w = self.weights * valid.to(self.weights.dtype)
        return (rows * w.unsqueeze(-1)).sum(-2)


class EventEmbedding(nn.Module):
    """Token (x, y, t_norm, p) → vector [dim]: concat(e_x(p, x), e_y(p, y)) + time encoding.

    The channels are split between the axes in proportion to width and height (v1 used 147 + 109 of 256
    for 240×180). Coordinates are in pixels and may be downsampled by `scale` (v1 used 36×48 for
    240×180). Time: "add" puts t_norm ∈ [0, 1] on every channel (v1's choice, best in its ablation);
    "fourier" adds a learned projection of sin/cos(2π f t), f = 1..8.
    Shapes: tokens [B, N, 4] → [B, N, dim].
    """

    freqs: Tensor

    def __init__(
        self,
        width: int,
        height: int,
        dim: int = 64,
        neighbours: int = 2,
        scale: float = 1.0,
        time_mode: str = "add",
    ) -> None:
        super().__init__()
        if time_mode not in TIME_MODES:
            raise ValueError(f"event2vec time_mode {time_mode!r}: use one of {TIME_MODES}")
        self.scale = float(scale)
        w, h = max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))
        dx = max(1, round(dim * w / (w + h)))
        self.ex = AxisEmbedding(w, dx, neighbours)
        self.ey = AxisEmbedding(h, dim - dx, neighbours)
        self.time_mode = time_mode
        self.time = nn.Linear(16, dim) if time_mode == "fourier" else None
        self.register_buffer("freqs", torch.arange(1, 9, dtype=torch.float32) * 2 * math.pi)

    def forward(self, tokens: Tensor) -> Tensor:
        x = torch.floor(tokens[..., 0] * self.scale).long()
        y = torch.floor(tokens[..., 1] * self.scale).long()
        t = tokens[..., 2:3]
        p = (tokens[..., 3] > 0.5).long()
        e = torch.cat([self.ex(p, x), self.ey(p, y)], -1)
        if self.time is None:
            return e + t
        ang = t * self.freqs
        proj: Tensor = self.time(torch.cat([ang.sin(), ang.cos()], -1))
        return e + proj
