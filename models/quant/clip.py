"""AWQ-style weight clipping: per row and group, the max-abs shrink that minimises the layer's output error."""

from __future__ import annotations

import torch
from torch import Tensor

from .quantizer import QuantSpec, fake_quant, fit_scale_zero

__all__ = ["awq_clip", "clipped_scale_zero"]


def clipped_scale_zero(w: Tensor, spec: QuantSpec, clip: Tensor) -> tuple[Tensor, Tensor]:
    """(scale, zero) [rows, groups] fitted on W clamped to ±clip [rows, groups], group by group."""
    gs = spec.group_size or w.shape[1]
    scales, zeros = [], []
    for g, j in enumerate(range(0, w.shape[1], gs)):
        m = clip[:, g : g + 1]
        s, z = fit_scale_zero(torch.maximum(torch.minimum(w[:, j : j + gs], m), -m), spec)
        scales.append(s)
        zeros.append(z)
    return torch.cat(scales, 1), torch.cat(zeros, 1)


@torch.no_grad()
def awq_clip(w: Tensor, a: Tensor, spec: QuantSpec, grid: int = 20, max_shrink: float = 0.5) -> Tensor:
    """Clip values [rows, groups] for W [rows, cols] given the input second moment A = XᵀX/n [cols, cols].

    For each group, max|w| is shrunk by 1 − i/grid for i < max_shrink·grid, W is clamped to ±that,
    quantized with min-max, and the shrink with the smallest output error ‖(Q(W_clip) − W)x‖² is kept, per
    row (llm-awq `auto_clip.py`: n_grid 20, max_shrink 0.5; TesseraQ starts from it [SCIENCE 4.8.4]).
    AWQ samples 512 tokens; the second moment uses every calibration row at the same cost.
    """
    w, a = w.double(), a.double()
    gs = spec.group_size or w.shape[1]
    clips = []
    for j in range(0, w.shape[1], gs):
        wg, ag = w[:, j : j + gs], a[j : j + gs, j : j + gs]
        org = wg.abs().amax(1, keepdim=True)
        best, best_err = org.clone(), torch.full_like(org, float("inf"))
        for i in range(max(1, int(max_shrink * grid))):
            m = org * (1 - i / grid)
            wc = torch.maximum(torch.minimum(wg, m), -m)
            s, z = fit_scale_zero(wc, spec)
            d = fake_quant(wc, s, z, spec.maxq) - wg
            err = ((d @ ag) * d).sum(1, keepdim=True)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, m, best)
        clips.append(best)
    return torch.cat(clips, 1)
