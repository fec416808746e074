"""LoAS data formats: T spikes packed in one word per neuron, silent neurons, compressed weight fibers."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "pack_spikes",
    "unpack_spikes",
    "popcount",
    "mask_one_spike",
    "CompressedWeights",
    "compress_weights",
    "spike_sparsity",
    "silent_ratio",
]


def pack_spikes(spikes: torch.Tensor) -> torch.Tensor:
    """spikes[T, ...] in {0, 1} → words[...] int64 with bit t set when the neuron fired at t."""
    t = spikes.shape[0]
    shifts = (2 ** torch.arange(t, dtype=torch.int64)).view(t, *([1] * (spikes.dim() - 1)))
    return (spikes.to(torch.int64) * shifts).sum(0)


def unpack_spikes(words: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Inverse of `pack_spikes`: words[...] → spikes[T, ...] as float {0, 1}."""
    return torch.stack([((words >> t) & 1) for t in range(timesteps)]).to(torch.float32)


def popcount(words: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Number of spikes in each packed word."""
    return sum(((words >> t) & 1) for t in range(timesteps))  # type: ignore[return-value]


def mask_one_spike(words: torch.Tensor, timesteps: int) -> torch.Tensor:
    """LoAS's "strong" mode: neurons that fire only once in the window are treated as silent."""
    return torch.where(popcount(words, timesteps) == 1, torch.zeros_like(words), words)


def spike_sparsity(spikes: torch.Tensor) -> float:
    """Fraction of (neuron, timestep) entries without a spike."""
    return 1.0 - float((spikes != 0).float().mean())


def silent_ratio(words: torch.Tensor) -> float:
    """Fraction of neurons silent in every timestep (what packing lets LoAS skip)."""
    return float((words == 0).float().mean())


@dataclass
class CompressedWeights:
    """A sparse weight matrix as LoAS stores it: per output column m, a K-bit bitmask of non-zeros and
    the non-zero values in row order (fibers), plus column pointers into `values`.

    Shapes: bitmask[K, M] bool, values[nnz], col_ptr[M + 1].
    """

    bitmask: torch.Tensor
    values: torch.Tensor
    col_ptr: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.bitmask.shape[0]), int(self.bitmask.shape[1])

    @property
    def sparsity(self) -> float:
        return 1.0 - float(self.bitmask.float().mean())

    def column(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(bitmask[K], values[nnz_m]) of one column fiber."""
        lo, hi = int(self.col_ptr[m]), int(self.col_ptr[m + 1])
        return self.bitmask[:, m], self.values[lo:hi]

    def to_dense(self) -> torch.Tensor:
        dense = torch.zeros(self.shape, dtype=self.values.dtype)
        dense.t()[self.bitmask.t()] = self.values
        return dense


def compress_weights(w: torch.Tensor) -> CompressedWeights:
    """w[K, M] → bitmask + column-ordered values (column-major, rows ascending inside a column)."""
    mask = w != 0
    values = w.t()[mask.t()]
    col_ptr = torch.zeros(w.shape[1] + 1, dtype=torch.int64)
    col_ptr[1:] = torch.cumsum(mask.sum(0), 0)
    return CompressedWeights(mask, values.clone(), col_ptr)
