"""GPTQ and GPTAQ (GPTQv2): Hessian-guided column-by-column quantization with optimal-brain-surgeon updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .quantizer import QuantError, QuantSpec, dequantize, fit_scale_zero, quantize_int, rtn

__all__ = ["LayerQuant", "gptq", "gptaq", "rtn_layer", "prepare_hessian", "asymmetry_projection"]


@dataclass
class LayerQuant:
    """A quantized weight: integers, per-group scale/zero and the group of each input column.

    ŵ[r, j] = scale[r, g_idx[j]] · (qweight[r, j] − zero[r, g_idx[j]]). qweight [rows, cols] is in the
    original column order (act-order only changes which group a column belongs to).
    """

    qweight: Tensor
    scale: Tensor
    zero: Tensor
    g_idx: Tensor
    bits: int
    group_size: int | None
    loss: float = 0.0

    def dequant(self) -> Tensor:
        return dequantize(self.qweight, self.scale[:, self.g_idx], self.zero[:, self.g_idx])

    @property
    def contiguous_groups(self) -> bool:
        """True when column j lies in group j // group_size (exportable to MatMulNBits without g_idx)."""
        gs = self.group_size or self.qweight.shape[1]
        return bool(torch.equal(self.g_idx, torch.arange(self.qweight.shape[1]) // gs))

    def to_dict(self) -> dict[str, Any]:
        """Tensors and ints only, so `torch.load(weights_only=True)` can read it back."""
        return {
            "qweight": self.qweight.to(torch.uint8),
            "scale": self.scale.float(),
            "zero": self.zero.to(torch.uint8),
            "g_idx": self.g_idx.to(torch.int32),
            "bits": self.bits,
            "group_size": self.group_size or 0,
            "loss": float(self.loss),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerQuant:
        return cls(
            d["qweight"].float(),
            d["scale"].float(),
            d["zero"].float(),
            d["g_idx"].long(),
            int(d["bits"]),
            int(d["group_size"]) or None,
            float(d.get("loss", 0.0)),
        )


def rtn_layer(w: Tensor, spec: QuantSpec) -> LayerQuant:
    """Round-to-nearest baseline as a `LayerQuant`."""
    q, s, z = rtn(w, spec)
    gs = spec.group_size or w.shape[1]
    return LayerQuant(q, s, z, torch.arange(w.shape[1]) // gs, spec.bits, spec.group_size)


def prepare_hessian(w: Tensor, h: Tensor, damp: float) -> tuple[Tensor, Tensor, Tensor]:
    """Dead inputs (H_jj = 0) get H_jj = 1 and a zeroed column; damping adds damp·mean(diag H) [GPTQ gptq.py].

    Returns (W, H, dead mask), float64 copies.
    """
    w, h = w.double().clone(), h.double().clone()
    if not torch.isfinite(h).all():
        raise QuantError("the Hessian has non-finite entries: check the calibration data for NaN/inf")
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    if damp > 0:
        h += damp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    return w, h, dead


def _upper_inverse_cholesky(h: Tensor) -> Tensor:
    """U with U upper triangular and UᵀU = H⁻¹; row i / U_ii is the OBS update row [GPTQ, SCIENCE 4.1]."""
    try:
        lower = torch.linalg.cholesky(h)
    except RuntimeError as e:
        raise QuantError(
            "the damped Hessian is not positive definite: raise `damp` or add calibration data"
        ) from e
    upper: Tensor = torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)
    return upper


def asymmetry_projection(g: Tensor, u: Tensor, alpha: float) -> Tensor:
    """P = α · triu₁(G Uᵀ) · U (strictly upper triangular) [GPTAQ gptaq_utils.py, SCIENCE 4.2]."""
    return alpha * torch.triu(g @ u.T, diagonal=1) @ u


def gptq(
    w: Tensor,
    h: Tensor,
    spec: QuantSpec,
    *,
    damp: float = 0.01,
    act_order: bool = False,
    block_size: int = 128,
    static_groups: bool = False,
    g: Tensor | None = None,
    alpha: float = 0.25,
) -> LayerQuant:
    """Quantize W [rows, cols] to minimise ‖WX − QX‖² given H = (2/n)XXᵀ [cols, cols] (GPTQ, Frantar et al. 2023).

    Columns are quantized left to right (or by descending H_jj with `act_order`); each column's error
    e = (w − q)/U_ii is spread over the remaining columns by W[:, i:] −= e ⊗ U[i, i:], with lazy updates
    of the columns beyond each `block_size` block. With `g` = (2/n)ΔX·X_qᵀ the GPTAQ term is added:
    W[:, i:] += w ⊗ P[i, i:] (see `gptaq`). As in the reference code, a group's (scale, zero) is fitted
    when its first column is reached, on the columns as they stand then: with the lazy updates of earlier
    `block_size` blocks but not the in-block updates of the current block (so the result depends on
    `block_size` when groups are smaller than a block). With `static_groups` every group is fitted up
    front on the uncompensated W, in original column order (act-order then needs no g_idx reordering).
    """
    if w.dim() != 2 or h.shape != (w.shape[1], w.shape[1]):
        raise QuantError(
            f"gptq: W must be [rows, cols] and H [cols, cols]; got W {tuple(w.shape)}, H {tuple(h.shape)}"
        )
    rows, cols = w.shape
    gs = spec.group_size or cols
    scale = zero = torch.empty(0)
    if not spec.group_size:
        # Per channel the reference fits once on W as given, before dead columns are zeroed [SCIENCE 4.8.1].
        scale, zero = fit_scale_zero(w.double(), spec)
    w, h, dead = prepare_hessian(w, h, damp)
    gm = None
    if g is not None:
        gm = g.double().clone()
        gm[:, dead] = 0.0
    static: list[tuple[Tensor, Tensor]] = []
    if spec.group_size and static_groups:
        static = [fit_scale_zero(w[:, j : j + gs], spec) for j in range(0, cols, gs)]
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(cols)
    w, h = w[:, perm], h[perm][:, perm]
    if gm is not None:
        gm = gm[perm][:, perm]
    u = _upper_inverse_cholesky(h)
    p = asymmetry_projection(gm, u, alpha) if gm is not None else None

    q_all = torch.zeros_like(w)
    group_of = torch.zeros(cols, dtype=torch.long)  # in permuted order
    scales: list[Tensor] = [scale] if not spec.group_size else []
    zeros: list[Tensor] = [zero] if not spec.group_size else []
    loss = 0.0
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        p1 = p[i1:i2, i1:i2] if p is not None else None
        for i in range(i2 - i1):
            col = i1 + i
            if spec.group_size:
                if static:
                    grp = int(perm[col]) // gs
                    scale, zero = static[grp]
                elif col % gs == 0:
                    # The reference slices the outer W: earlier blocks' lazy updates are in, this block's
                    # in-block updates are not [IST-DASLab/gptq gptq.py, GPTAQ gptaq_utils.py; SCIENCE 4.8.1].
                    scale, zero = fit_scale_zero(w[:, col : col + gs], spec)
                    scales.append(scale)
                    zeros.append(zero)
                    grp = len(scales) - 1
                else:
                    grp = len(scales) - 1
                group_of[col] = grp
            wc = w1[:, i]
            qi = quantize_int(wc[:, None], scale, zero, spec.maxq)
            q_all[:, col] = qi.flatten()
            qc = dequantize(qi, scale, zero).flatten()
            d = u1[i, i]
            e = (wc - qc) / d
            loss += float((e**2).sum()) / 2
            upd = e[:, None] @ u1[i, i:][None, :]
            if p1 is not None:
                upd = upd - wc[:, None] @ p1[i, i:][None, :]
            w1[:, i:] -= upd
            err1[:, i] = e
        upd_lazy = err1 @ u[i1:i2, i2:]
        if p is not None:
            # The official code uses the block as it stands here, i.e. already-quantized columns [SCIENCE 4.2].
            upd_lazy = upd_lazy - w1 @ p[i1:i2, i2:]
        w[:, i2:] -= upd_lazy
    if spec.group_size and static:
        scales = [s for s, _ in static]
        zeros = [z for _, z in static]
    inv = torch.argsort(perm)
    g_idx = group_of[inv] if spec.group_size else torch.zeros(cols, dtype=torch.long)
    return LayerQuant(
        q_all[:, inv], torch.cat(scales, 1), torch.cat(zeros, 1), g_idx, spec.bits, spec.group_size, loss
    )


def gptaq(w: Tensor, h: Tensor, g: Tensor, spec: QuantSpec, *, alpha: float = 0.25, **kw: Any) -> LayerQuant:
    """GPTAQ / GPTQv2 (Li et al., ICML 2025): fit Q X_q to the full-precision W X_fp.

    H = (2/n) X_q X_qᵀ from the partly quantized model's inputs; G = (2/n)(X_fp − X_q) X_qᵀ. The
    asymmetry is absorbed by P = α·triu₁(G Uᵀ)U; α = 0 is GPTQ exactly; α defaults to 0.25
    [GPTQModel `v2_alpha`, SCIENCE 4.2].
    """
    if g.shape != h.shape:
        raise QuantError(f"gptaq: G must match H {tuple(h.shape)}, got {tuple(g.shape)}")
    return gptq(w, h, spec, g=g, alpha=alpha, **kw)
