"""event2vec classifier: event embedding → small linear-attention encoder → mean pool → linear head."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .embedding import EventEmbedding

__all__ = ["LinearAttention", "EncoderBlock", "Event2Vec"]


class LinearAttention(nn.Module):
    """Non-causal linear attention (Katharopoulos et al. 2020): φ(Q)(φ(K)ᵀV) / (φ(Q)·Σφ(K)), φ = elu + 1.

    O(N·d²) instead of O(N²·d), so a window of a thousand events stays cheap. x [B, N, d] → [B, N, d].
    """

    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).unbind(2)  # [B, N, h, e]
        q, k = F.elu(q) + 1, F.elu(k) + 1
        kv = torch.einsum("bnhe,bnhf->bhef", k, v)
        z = 1.0 / (torch.einsum("bnhe,bhe->bnh", q, k.sum(1)) + 1e-6)
        y = torch.einsum("bnhe,bhef,bnh->bnhf", q, kv, z)
        return self.out(y.reshape(b, n, d))  # type: ignore[no-any-return]


class EncoderBlock(nn.Module):
    """Pre-norm block: [x + DWConv(LN x)], x + Attn(LN x), then x + FFN(LN x) with GELU.

    The optional depthwise Conv1d (kernel `seq_conv`) runs along the time-ordered token sequence, so the
    block sees event order, not just a set: v2/v3 get order from a gated recurrent attention and Conv1d
    layers on Δt [SCIENCE 2.5]; linear attention alone is order-blind.
    """

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float = 0.0, seq_conv: int = 0) -> None:
        super().__init__()
        self.n0 = nn.LayerNorm(dim) if seq_conv else None
        self.conv = nn.Conv1d(dim, dim, seq_conv, padding=seq_conv // 2, groups=dim) if seq_conv else None
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = LinearAttention(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if self.conv is not None and self.n0 is not None:
            x = x + self.conv(self.n0(x).transpose(1, 2)).transpose(1, 2)[:, : x.shape[1]]
        x = x + self.drop(self.attn(self.n1(x)))
        return x + self.drop(self.ffn(self.n2(x)))  # type: ignore[no-any-return]


class Event2Vec(nn.Module):
    """Classify a window of events given as tokens [B, N, 4] = (x px, y px, t_norm ∈ [0, 1], p ∈ {0, 1}).

    logits = W · LN(mean_n Encoder(Embed(tokens))_n). Reimplemented from the paper's description
    (Fang & Panda, arXiv 2504.15371; SCIENCE 2.5): the embedding is v1's (p, x)/(p, y) tables with
    neighbour smoothing; the encoder is a linear-attention stand-in for v2/v3's GLA/Forgetting
    Transformer (d 64, 2 layers, 2 heads, FFN 128 as in v2).

    Example::

        net = Event2Vec(width=64, height=64, n_classes=8)
        net(torch.rand(4, 512, 4) * torch.tensor([63, 63, 1, 1])).shape   # (4, 8)
    """

    arch_name = "event2vec"

    def __init__(
        self,
        width: int,
        height: int,
        n_classes: int,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        ffn: int = 128,
        neighbours: int = 2,
        scale: float = 1.0,
        time_mode: str = "add",
        dropout: float = 0.0,
        seq_conv: int = 0,
    ) -> None:
        super().__init__()
        self._arch: dict[str, Any] = {
            "width": width,
            "height": height,
            "n_classes": n_classes,
            "dim": dim,
            "layers": layers,
            "heads": heads,
            "ffn": ffn,
            "neighbours": neighbours,
            "scale": scale,
            "time_mode": time_mode,
            "dropout": dropout,
            "seq_conv": seq_conv,
        }
        self.embed = EventEmbedding(width, height, dim, neighbours, scale, time_mode)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, ffn, dropout, seq_conv) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    @property
    def arch(self) -> dict[str, Any]:
        return {"name": self.arch_name, **self._arch}

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.dim() != 3 or tokens.shape[-1] != 4:
            raise ValueError(
                f"Event2Vec expects tokens [B, N, 4] (x, y, t_norm, p), got {tuple(tokens.shape)}"
            )
        h = self.embed(tokens)
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h.mean(1)))  # type: ignore[no-any-return]
