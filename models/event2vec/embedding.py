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


def _legacy_add_time(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *_: object) -> None:
    """Files from before `time_add`: "add" then meant v = 1 (t on every channel), so load exactly that."""
    key = prefix + "time_add.weight"
    layer = getattr(module, "time_add", None)
    if isinstance(layer, nn.Linear) and key not in state_dict and prefix + "ex.table" in state_dict:
        state_dict[key] = torch.ones_like(layer.weight)


class EventEmbedding(nn.Module):
    """Token (x, y, t_norm, p) → vector [dim]: concat(e_x(p, x), e_y(p, y)) + time encoding.

    The channels are split between the axes in proportion to width and height (v1 used 147 + 109 of 256
    for 240×180). Coordinates are in pixels and may be downsampled by `scale` (v1 used 36×48 for
    240×180). Time, t = t_norm ∈ [0, 1]:

    - "add": e + t·v with v ∈ R^dim learned (`time_add`, a bias-free Linear(1, dim)). v1 adds the bare
      scalar t to every channel (v = 1); that survives v1's post-norm Transformer, but here every block is
      pre-norm and the head normalises too, and LayerNorm removes a shift shared by all channels, so the
      logits could not depend on t at all. A learned per-channel v keeps v1's "time is added" design and
      makes it visible. Model files saved before `time_add` existed load with v = 1 (their behaviour).
    - "fourier": e + Linear(sin/cos(2π f t)), f = 1..8.

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
        self.time_add = nn.Linear(1, dim, bias=False) if time_mode == "add" else None
        self.register_buffer("freqs", torch.arange(1, 9, dtype=torch.float32) * 2 * math.pi)
        self.register_load_state_dict_pre_hook(_legacy_add_time)  # type: ignore[no-untyped-call]

    def forward(self, tokens: Tensor) -> Tensor:
        x = torch.floor(tokens[..., 0] * self.scale).long()
        y = torch.floor(tokens[..., 1] * self.scale).long()
        t = tokens[..., 2:3]
        p = (tokens[..., 3] > 0.5).long()
        e = torch.cat([self.ex(p, x), self.ey(p, y)], -1)
        if self.time_add is not None:
            return e + self.time_add(t)  # type: ignore[no-any-return]
        if self.time is None:
            raise ValueError(f"event2vec time_mode {self.time_mode!r}: use one of {TIME_MODES}")
        ang = t * self.freqs
        proj: Tensor = self.time(torch.cat([ang.sin(), ang.cos()], -1))
        return e + proj
