"""LoAS functional model: fully temporal-parallel inner join of packed spikes with compressed weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sim_hw.loas.packing import CompressedWeights, compress_weights, mask_one_spike, pack_spikes, popcount

__all__ = ["run_layer", "inner_join_reference", "JoinStats", "join_stats"]


def run_layer(
    spikes: torch.Tensor, weights: torch.Tensor | CompressedWeights, one_spike_mask: bool = False
) -> tuple[torch.Tensor, JoinStats]:
    """O[t, n, m] = Σ_k A[t, n, k]·B[k, m] the LoAS way, for all T timesteps at once.

    spikes[T, N, K] binary, weights[K, M] (dense or compressed). Each neuron's T spikes are packed
    into one word and silent words are skipped; the non-zero weights of column m are joined with the
    non-silent neurons of row n; every match adds B[k, m] to a pseudo-accumulator (as if all T bits
    were 1) and to the correction accumulator of each timestep whose bit is 0, so
    O[t] = pseudo − correction[t] exactly. Integer-valued weights give results identical to the dense
    product (accumulation in float64). `one_spike_mask` drops neurons that fire once (LoAS "strong").

    Returns (out[T, N, M] float32, JoinStats). Example:
        >>> out, st = run_layer(torch.randint(0, 2, (4, 3, 8)).float(), torch.randint(-3, 4, (8, 5)).float())
    """
    t = spikes.shape[0]
    fibers = weights if isinstance(weights, CompressedWeights) else compress_weights(weights)
    b = fibers.to_dense().to(torch.float64)
    words = pack_spikes(spikes)
    if one_spike_mask:
        words = mask_one_spike(words, t)
    nonsilent = (words != 0).to(torch.float64)  # [N, K]: the packed A fiber's bitmask
    bm = (b != 0).to(torch.float64)
    pseudo = nonsilent @ b  # speculative: every matched weight added once, as if all T bits were 1
    out = torch.empty((t, *pseudo.shape), dtype=torch.float64)
    for ti in range(t):
        zero_bit = nonsilent * (((words >> ti) & 1) == 0).to(torch.float64)
        out[ti] = pseudo - zero_bit @ b  # correction accumulator of timestep ti
    stats = _basic_stats(words, nonsilent, bm, t)
    return out.to(torch.float32), stats


def inner_join_reference(words: torch.Tensor, fibers: CompressedWeights, timesteps: int) -> torch.Tensor:
    """A literal, loop-by-loop version of the TPPE join for small inputs (tests check the fast one
    against it): for each (n, m), AND the bitmasks, walk the matches in order, look each weight up
    by the prefix sum of B's bitmask, accumulate pseudo and per-timestep corrections."""
    n_rows, k = words.shape
    _, m_cols = fibers.shape
    out = torch.zeros((timesteps, n_rows, m_cols), dtype=torch.float64)
    for n in range(n_rows):
        a_mask = words[n] != 0
        for m in range(m_cols):
            b_mask, values = fibers.column(m)
            prefix = torch.cumsum(b_mask.to(torch.int64), 0) - 1  # fast prefix sum: position in the fiber
            pseudo, corr = 0.0, [0.0] * timesteps
            for kk in torch.nonzero(a_mask & b_mask).flatten().tolist():
                v = float(values[int(prefix[kk])])
                pseudo += v
                for t in range(timesteps):
                    if not (int(words[n, kk]) >> t) & 1:
                        corr[t] += v
            for t in range(timesteps):
                out[t, n, m] = pseudo - corr[t]
    return out.to(torch.float32)


@dataclass
class JoinStats:
    """Counts one window [T, N, K] × [K, M] produces; the cycle counts depend on `n_pe`/`join_width`
    (filled by `join_stats`). All counts are totals over the window."""

    timesteps: int
    rows: int
    k: int
    m: int
    spikes: float
    nonsilent: float
    nnz_weights: float
    matches: float  # Σ_{n,m} |nonsilent(n) ∧ nz(B[:, m])|: FTP joins (each serves all T)
    zero_bit_corrections: float  # correction-accumulator adds
    matches_t: float = 0.0  # Σ_t Σ_{n,m} |A_t(n) ∧ nz(B[:, m])|: what a timestep-sequential design joins
    loas_cycles: float = 0.0
    sparten_cycles: float = 0.0
    gospa_cycles: float = 0.0
    gamma_cycles: float = 0.0
    nnz_a_t: float = 0.0  # Σ_t Σ_n spikes (non-zero entries a sequential design streams)

    def __add__(self, other: JoinStats) -> JoinStats:
        vals = {
            f: getattr(self, f) + getattr(other, f)
            for f in self.__dataclass_fields__
            if f not in ("timesteps", "rows", "k", "m")
        }
        return JoinStats(self.timesteps, self.rows + other.rows, self.k, self.m, **vals)


def _basic_stats(words: torch.Tensor, nonsilent: torch.Tensor, bm: torch.Tensor, t: int) -> JoinStats:
    matches = float((nonsilent.sum(0) @ bm).sum())  # Σ_n Σ_m Σ_k ns[n,k] bm[k,m]
    weighted = (popcount(words, t).to(torch.float64).sum(0) @ bm).sum()  # Σ matched spikes
    return JoinStats(
        t,
        int(words.shape[0]),
        int(words.shape[1]),
        int(bm.shape[1]),
        spikes=float(popcount(words, t).sum()),
        nonsilent=float(nonsilent.sum()),
        nnz_weights=float(bm.sum()),
        matches=matches,
        zero_bit_corrections=float(t * matches - weighted),
        matches_t=float(weighted),
    )


def _lockstep(cycles: torch.Tensor, n_pe: int) -> float:
    """Rows go to the PEs n_pe at a time and share one broadcast weight fiber, so each (group, m)
    takes as long as its slowest row: Σ_groups Σ_m max_{n∈group} cycles[n, m]."""
    n, m = cycles.shape
    pad = (-n) % n_pe
    c = torch.nn.functional.pad(cycles, (0, 0, 0, pad)).view(-1, n_pe, m)
    return float(c.amax(dim=1).sum())


def join_stats(
    spikes: torch.Tensor,
    weight_mask: torch.Tensor,
    n_pe: int = 16,
    join_width: int = 128,
    one_spike_mask: bool = False,
) -> JoinStats:
    """Counts and cycle counts of a window for LoAS and the timestep-sequential baselines.

    LoAS (FTP): a (row, column) pair takes max(⌈K/join_width⌉, matches) cycles (the bitmask
    AND/prefix front end and the one-match-per-cycle accumulator are pipelined), in lockstep groups
    of `n_pe` rows. SparTen-style: the same per timestep with the spikes of that timestep.
    GoSPA-style: per timestep, an ideal join (max(1, matches_t) cycles; its static-sparsity filter
    wastes no cycle on empty chunks), lockstep. Gamma-style: Gustavson row-wise, each spike
    A_t(n, k) merges B's row k (one element per cycle) while the LIF updates the row's M outputs
    (one per cycle) every timestep, rows spread over PEs without lockstep. Every design thus runs at
    least one cycle per output neuron and timestep, except LoAS whose P-LIF fires all T at once.
    """
    t = spikes.shape[0]
    words = pack_spikes(spikes)
    if one_spike_mask:
        words = mask_one_spike(words, t)
        spikes = torch.stack([((words >> i) & 1) for i in range(t)]).float()
    a = spikes.to(torch.float32)
    ns = (words != 0).to(torch.float32)
    bm = weight_mask.to(torch.float32)
    stats = _basic_stats(words, ns.double(), bm.double(), t)
    k = ns.shape[1]
    chunks = float(-(-k // join_width))
    loas = torch.clamp(ns @ bm, min=chunks)
    stats.loas_cycles = _lockstep(loas, n_pe)
    sparten = gospa = 0.0
    for ti in range(t):
        mt = a[ti] @ bm
        sparten += _lockstep(torch.clamp(mt, min=chunks), n_pe)
        gospa += _lockstep(torch.clamp(mt, min=1.0), n_pe)
    stats.sparten_cycles, stats.gospa_cycles = sparten, gospa
    row_nnz = bm.sum(1)  # nnz of B's row k
    merges = a @ row_nnz  # [T, N]: B-row elements merged into output row n at timestep t
    # the LIF of each timestep updates all M outputs of the row, one per cycle, overlapped with merging
    per_row = torch.clamp(merges, min=float(bm.shape[1])).sum(0)  # [N]
    stats.gamma_cycles = max(float(per_row.sum()) / n_pe, float(per_row.max()) if per_row.numel() else 0.0)
    stats.nnz_a_t = float(a.sum())
    return stats
