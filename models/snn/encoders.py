"""Spike encoders: turn a static sample [B, ...] into T time steps [T, B, ...]."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["direct_encode", "rate_encode", "latency_encode", "Encoder", "ENCODINGS"]

ENCODINGS = ("direct", "rate", "latency")


def direct_encode(x: Tensor, timesteps: int) -> Tensor:
    """Repeat the analogue input at every step (the first layer turns it into spikes). [B,...] → [T,B,...]."""
    return x.unsqueeze(0).expand(timesteps, *x.shape)


def rate_encode(
    x: Tensor, timesteps: int, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Bernoulli (Poisson-like) spikes with probability clamp(gain·x, 0, 1) per step. x is expected in [0, 1]."""
    p = (gain * x).clamp(0.0, 1.0).unsqueeze(0).expand(timesteps, *x.shape)
    return torch.bernoulli(p, generator=generator)


def latency_encode(x: Tensor, timesteps: int, threshold: float = 0.01) -> Tensor:
    """One spike per feature at step round((1 − x)·(T − 1)): larger x fires earlier (linear time-to-first-spike).

    x is expected in [0, 1]; features with x <= threshold never spike. [B, ...] → [T, B, ...].
    """
    xc = x.clamp(0.0, 1.0)
    t = ((1.0 - xc) * (timesteps - 1)).round().long()
    steps = torch.arange(timesteps, device=x.device).view(timesteps, *([1] * x.dim()))
    return ((steps == t.unsqueeze(0)) & (xc > threshold).unsqueeze(0)).to(x.dtype)


@dataclass(frozen=True)
class Encoder:
    """How a model's samples become time steps; saved with the model (`meta["encoder"]`).

    Example: ``Encoder("direct", 8)(x)`` maps [B, 6, 128] IMU windows to [8, B, 6, 128].
    """

    kind: str = "direct"
    timesteps: int = 8
    gain: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ENCODINGS:
            raise ValueError(f"encoder kind {self.kind!r}: use one of {ENCODINGS}")
        if self.timesteps < 1:
            raise ValueError(f"encoder timesteps {self.timesteps}: must be >= 1")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.kind == "direct":
            return direct_encode(x, self.timesteps)
        if self.kind == "rate":
            return rate_encode(x, self.timesteps, self.gain, generator)
        return latency_encode(x, self.timesteps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Encoder:
        return cls(**d)
