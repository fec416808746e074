"""TesseraQ: progressive adaptive rounding (PAR) with dequantization-scale tuning (DST), layer by layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .gptq import LayerQuant
from .quantizer import QuantError, QuantSpec, rtn

__all__ = ["TesseraQConfig", "tesseraq", "tesseraq_gram", "PAR_QUANTILES"]

#: Fraction of rounding variables still soft after each round (20 rounds) [llmc tesseraq.py, SCIENCE 4.3].
PAR_QUANTILES = (
    0.8,
    0.65,
    0.5,
    0.43,
    0.38,
    0.34,
    0.3,
    0.27,
    0.24,
    0.21,
    0.18,
    0.15,
    0.12,
    0.10,
    0.08,
    0.06,
    0.04,
    0.02,
    0.01,
    0.005,
)


@dataclass(frozen=True)
class TesseraQConfig:
    """PAR/DST settings. The paper runs 250 Adam steps per round at lr 1e-3 on LLM blocks [SCIENCE 4.3];
    a single small layer converges in far fewer steps, so the defaults here are 60 steps at lr 1e-2."""

    steps_per_round: int = 60
    lr: float = 1e-2
    scale_lr: float = 1e-3
    weight_decay: float = 1e-4  # on the DST variables [SCIENCE 4.3]
    tune_scale: bool = True
    quantiles: tuple[float, ...] = PAR_QUANTILES
    #: target mix for `quantize_model`: Y = W·((1 − a)·X_q + a·X_fp); 1 = the full-precision block output
    #: (the paper's reconstruction target), 0 = the layer's own output on its quantized inputs.
    target_alpha: float = 1.0


def _sig(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


class _Adam:
    """Plain Adam (β 0.9/0.999, ε 1e-8, L2 weight decay like torch.optim.Adam) on one tensor."""

    def __init__(self, p: Tensor, lr: float, wd: float = 0.0) -> None:
        self.p, self.lr, self.wd, self.t = p, lr, wd, 0
        self.m, self.v = torch.zeros_like(p), torch.zeros_like(p)

    def step(self, g: Tensor) -> None:
        if self.wd:
            g = g + self.wd * self.p
        self.t += 1
        self.m.mul_(0.9).add_(g, alpha=0.1)
        self.v.mul_(0.999).addcmul_(g, g, value=0.001)
        mh = self.m / (1 - 0.9**self.t)
        vh = self.v / (1 - 0.999**self.t)
        self.p.sub_(self.lr * mh / (vh.sqrt() + 1e-8))


def tesseraq(
    w: Tensor, x_q: Tensor, y_target: Tensor, spec: QuantSpec, cfg: TesseraQConfig | None = None
) -> LayerQuant:
    """Quantize W [r, c] so that X_q Ŵᵀ matches `y_target` (= X_fp W_fpᵀ), X_q [n, c], y [n, r]."""
    if x_q.shape[1] != w.shape[1] or y_target.shape != (x_q.shape[0], w.shape[0]):
        raise QuantError(
            f"tesseraq: W {tuple(w.shape)}, X {tuple(x_q.shape)}, Y {tuple(y_target.shape)} do not match"
        )
    x, y = x_q.double(), y_target.double()
    n = max(x.shape[0], 1)
    return tesseraq_gram(w, x.T @ x / n, x.T @ y / n, spec, cfg)


@torch.no_grad()
def tesseraq_gram(
    w: Tensor, a: Tensor, b: Tensor, spec: QuantSpec, cfg: TesseraQConfig | None = None
) -> LayerQuant:
    """TesseraQ on second moments: A = X_qᵀX_q/n [c, c], B = X_qᵀY/n [c, r] (the loss needs nothing else).

    Ŵ = s·2σ(u) ⊙ (clamp(⌊W/s⌋ + h + z, 0, 2^b − 1) − z) with rounding h = clamp(1.2σ(ν) − 0.1, 0, 1),
    initialised at frac(W/s) from min-max (RTN) scales. Loss per output: ‖X_qŴᵀ − Y‖²/(n·r) =
    (tr(ŴAŴᵀ) − 2tr(ŴB))/r + const. Each PAR round hardens the variables whose |h − 0.5| lies above the
    round's quantile, then runs Adam on the soft ones and on u (DST, per row/group, c = 2σ(u) ∈ (0, 2));
    the end hardens all by h ≥ 0.5 and folds c into the scale [Li et al. 2024, arXiv 2410.19103].
    Gradients are written out by hand (a few GEMMs per step), so a layer takes well under a second.
    """
    cfg = cfg or TesseraQConfig()
    w, a, b = w.double(), a.double(), b.double()
    rows, cols = w.shape
    if a.shape != (cols, cols) or b.shape != (cols, rows):
        raise QuantError(
            f"tesseraq: A must be [{cols}, {cols}] and B [{cols}, {rows}]; got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    gs = spec.group_size or cols
    g_idx = torch.arange(cols) // gs
    n_groups = int(g_idx.max()) + 1
    _, s0, z = rtn(w, spec)
    s_col, z_col = s0[:, g_idx], z[:, g_idx]
    base = torch.floor(w / s_col)
    frac = (w / s_col - base).clamp(0.0, 1.0)
    nu = torch.logit(((frac + 0.1) / 1.2).clamp(1e-4, 1 - 1e-4))
    u = torch.zeros_like(s0)
    hard = torch.zeros_like(w, dtype=torch.bool)
    hard_val = torch.zeros_like(w)
    opt_nu = _Adam(nu, cfg.lr)
    opt_u = _Adam(u, cfg.scale_lr, cfg.weight_decay)
    bt = b.T

    for quantile in cfg.quantiles:
        h = (1.2 * _sig(nu) - 0.1).clamp(0.0, 1.0)
        score = torch.where(hard, torch.full_like(h, 0.5), (h - 0.5).abs())
        thr = torch.quantile(score.flatten(), quantile) if score.numel() <= 16_000_000 else score.median()
        newly = (~hard) & (score >= thr)
        hard_val = torch.where(newly, (h >= 0.5).double(), hard_val)
        hard = hard | newly
        soft = ~hard
        for _ in range(cfg.steps_per_round):
            sg = _sig(nu)
            hs = 1.2 * sg - 0.1
            h = torch.where(hard, hard_val, hs.clamp(0.0, 1.0))
            pre = base + h + z_col
            q = pre.clamp(0, spec.maxq)
            c = 2 * _sig(u)
            w_hat = s_col * c[:, g_idx] * (q - z_col)
            grad_w = (2.0 / rows) * (w_hat @ a - bt)  # dL/dŴ
            inside = (pre > 0) & (pre < spec.maxq)
            g_nu = (
                grad_w * s_col * c[:, g_idx] * inside * (1.2 * sg * (1 - sg)) * ((hs > 0) & (hs < 1) & soft)
            )
            opt_nu.step(g_nu)
            if cfg.tune_scale:
                g_c = grad_w * s_col * (q - z_col)
                per_group = torch.zeros(rows, n_groups, dtype=w.dtype).index_add_(1, g_idx, g_c)
                opt_u.step(per_group * c * (1 - c / 2))  # d(2σ(u))/du = 2σ(1 − σ) = c(1 − c/2)
    h_final = torch.where(hard, hard_val, ((1.2 * _sig(nu) - 0.1) >= 0.5).double())
    q = torch.clamp(base + h_final + z_col, 0, spec.maxq)
    scale = s0 * (2 * _sig(u)) if cfg.tune_scale else s0
    w_hat = scale[:, g_idx] * (q - z_col)
    loss = float(((w_hat @ a) * w_hat).sum() - 2 * (w_hat * bt).sum()) / rows
    return LayerQuant(q, scale, z, g_idx, spec.bits, spec.group_size, loss)
