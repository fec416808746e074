"""TesseraQ: progressive adaptive rounding (PAR) with dequantization-scale tuning (DST), per layer or per block."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .gptq import LayerQuant
from .quantizer import QuantError, QuantSpec, rtn

__all__ = ["TesseraQConfig", "SoftRounding", "tesseraq", "tesseraq_gram", "tesseraq_block", "PAR_QUANTILES"]

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


def _soft_rounding(nu: Tensor) -> Tensor:
    """h = clamp(1.2σ(ν) − 0.1, 0, 1): the rectified sigmoid of adaptive rounding."""
    return (1.2 * _sig(nu) - 0.1).clamp(0.0, 1.0)


class _Adam:
    """Plain Adam (β 0.9/0.999, ε 1e-8, L2 weight decay like torch.optim.Adam) on one tensor."""

    def __init__(self, p: Tensor, lr: float, wd: float = 0.0) -> None:
        self.p, self.lr, self.wd, self.t = p, lr, wd, 0
        self.m, self.v = torch.zeros_like(p), torch.zeros_like(p)

    @torch.no_grad()
    def step(self, g: Tensor) -> None:
        if self.wd:
            g = g + self.wd * self.p
        self.t += 1
        self.m.mul_(0.9).add_(g, alpha=0.1)
        self.v.mul_(0.999).addcmul_(g, g, value=0.001)
        mh = self.m / (1 - 0.9**self.t)
        vh = self.v / (1 - 0.999**self.t)
        self.p.sub_(self.lr * mh / (vh.sqrt() + 1e-8))


class SoftRounding:
    """One weight's TesseraQ variables: rounding logits ν, DST logits u, and which roundings are hard.

    Ŵ = s·2σ(u) ⊙ (clamp(⌊W/s⌋ + h + z, 0, 2^b − 1) − z), soft rounding h = clamp(1.2σ(ν) − 0.1, 0, 1)
    started at frac(W/s) from min-max (RTN) scales; c = 2σ(u) ∈ (0, 2) per row/group starts at 1.
    Shared by the layer-wise solver (hand-written gradients) and block reconstruction (autograd).
    """

    def __init__(self, w: Tensor, spec: QuantSpec, cfg: TesseraQConfig) -> None:
        w = w.detach().double()
        self.spec, self.cfg = spec, cfg
        cols = w.shape[1]
        self.g_idx = torch.arange(cols) // (spec.group_size or cols)
        _, self.s0, self.z = rtn(w, spec)
        self.s_col, self.z_col = self.s0[:, self.g_idx], self.z[:, self.g_idx]
        self.base = torch.floor(w / self.s_col)
        frac = (w / self.s_col - self.base).clamp(0.0, 1.0)
        self.nu = torch.logit(((frac + 0.1) / 1.2).clamp(1e-4, 1 - 1e-4))
        self.u = torch.zeros_like(self.s0)
        self.hard = torch.zeros_like(w, dtype=torch.bool)
        self.hard_val = torch.zeros_like(w)
        self.opt_nu = _Adam(self.nu, cfg.lr)
        self.opt_u = _Adam(self.u, cfg.scale_lr, cfg.weight_decay)

    def scores(self) -> Tensor:
        """|h − 0.5| of the soft roundings (0.5 for hard ones): how decided each rounding already is."""
        return self._scores(_soft_rounding(self.nu))

    def _scores(self, h: Tensor) -> Tensor:
        return torch.where(self.hard, torch.full_like(h, 0.5), (h - 0.5).abs())

    def harden(self, threshold: Tensor) -> None:
        """Fix every soft rounding whose score reaches `threshold` to the nearer of 0 and 1."""
        h = _soft_rounding(self.nu)
        newly = (~self.hard) & (self._scores(h) >= threshold)
        self.hard_val = torch.where(newly, (h >= 0.5).double(), self.hard_val)
        self.hard = self.hard | newly

    def weight(self, nu: Tensor, u: Tensor) -> Tensor:
        """Ŵ from (possibly autograd-tracked) ν and u."""
        h = torch.where(self.hard, self.hard_val, _soft_rounding(nu))
        q = (self.base + h + self.z_col).clamp(0, self.spec.maxq)
        return self.s_col * (2 * _sig(u))[:, self.g_idx] * (q - self.z_col)

    def step_from_weight_grad(self, grad_w: Tensor) -> None:
        """One Adam step on ν and u given dL/dŴ, with the chain rule written out (no autograd graph)."""
        sg = _sig(self.nu)
        hs = 1.2 * sg - 0.1
        h = torch.where(self.hard, self.hard_val, hs.clamp(0.0, 1.0))
        pre = self.base + h + self.z_col
        q = pre.clamp(0, self.spec.maxq)
        c = (2 * _sig(self.u))[:, self.g_idx]
        inside = (pre > 0) & (pre < self.spec.maxq)
        soft_inside = (hs > 0) & (hs < 1) & ~self.hard
        self.opt_nu.step(grad_w * self.s_col * c * inside * (1.2 * sg * (1 - sg)) * soft_inside)
        if self.cfg.tune_scale:
            g_c = torch.zeros(self.s0.shape, dtype=grad_w.dtype).index_add_(
                1, self.g_idx, grad_w * self.s_col * (q - self.z_col)
            )
            c_g = 2 * _sig(self.u)
            self.opt_u.step(g_c * c_g * (1 - c_g / 2))  # d(2σ(u))/du = 2σ(1 − σ) = c(1 − c/2)

    def result(self, loss: float = 0.0) -> LayerQuant:
        """Harden what is left by h ≥ 0.5 and fold c into the scale."""
        h = torch.where(self.hard, self.hard_val, (_soft_rounding(self.nu) >= 0.5).double())
        q = torch.clamp(self.base + h + self.z_col, 0, self.spec.maxq)
        scale = self.s0 * (2 * _sig(self.u)) if self.cfg.tune_scale else self.s0
        return LayerQuant(q, scale, self.z, self.g_idx, self.spec.bits, self.spec.group_size, loss)


def _threshold(scores: list[Tensor], quantile: float) -> Tensor:
    """The `quantile` of all scores together (an order statistic: no size limit, unlike torch.quantile)."""
    flat = torch.cat([s.flatten() for s in scores])
    k = min(len(flat), max(1, math.ceil(quantile * len(flat))))
    return flat.kthvalue(k).values


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
    """TesseraQ on one layer's second moments: A = X_qᵀX_q/n [c, c], B = X_qᵀY/n [c, r].

    The loss per output, ‖X_qŴᵀ − Y‖²/(n·r) = (tr(ŴAŴᵀ) − 2tr(ŴB))/r + const, needs nothing else. Each PAR
    round hardens the variables whose |h − 0.5| lies above the round's quantile, then runs Adam on the soft
    ones and on the DST scales [Li et al. 2024, arXiv 2410.19103]. Gradients are written out by hand (a few
    GEMMs per step), so a layer takes well under a second. `tesseraq_block` reconstructs several layers.
    """
    cfg = cfg or TesseraQConfig()
    w, a, b = w.double(), a.double(), b.double()
    rows, cols = w.shape
    if a.shape != (cols, cols) or b.shape != (cols, rows):
        raise QuantError(
            f"tesseraq: A must be [{cols}, {cols}] and B [{cols}, {rows}]; got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    sr = SoftRounding(w, spec, cfg)
    bt = b.T
    for quantile in cfg.quantiles:
        sr.harden(_threshold([sr.scores()], quantile))
        for _ in range(cfg.steps_per_round):
            w_hat = sr.weight(sr.nu, sr.u)
            sr.step_from_weight_grad((2.0 / rows) * (w_hat @ a - bt))  # dL/dŴ
    lq = sr.result()
    w_hat = lq.dequant()
    lq.loss = float(((w_hat @ a) * w_hat).sum() - 2 * (w_hat * bt).sum()) / rows
    return lq


def tesseraq_block(
    block: nn.Module,
    weights: dict[str, Tensor],
    inputs: Sequence[tuple[Any, ...]],
    targets: Sequence[Tensor],
    spec: QuantSpec,
    cfg: TesseraQConfig | None = None,
) -> dict[str, LayerQuant]:
    """Block reconstruction: quantize several weights of `block` jointly so its outputs match `targets`.

    `weights` maps parameter names inside the block (e.g. ``"0.weight"``) to the float weights to quantize,
    flattened to [out, in·k] like a Linear's (the block's parameter keeps its own shape);
    `inputs[k]` are the positional arguments of the block's k-th calibration call (from the already
    quantized model) and `targets[k]` the output it should give (the float block on float inputs). The loss
    is the mean squared error over all calls, the PAR quantile is taken over all of the block's roundings
    together, and gradients come from autograd through the block's own forward, so a later layer's rounding
    can make up for an earlier one's: the paper's setting [SCIENCE 4.3]. Each step runs every call
    (full batch); the block must not keep state between calls.
    """
    cfg = cfg or TesseraQConfig()
    if not weights:
        raise QuantError("tesseraq_block: no weights to quantize")
    if len(inputs) != len(targets) or not inputs:
        raise QuantError(f"tesseraq_block: {len(inputs)} input calls but {len(targets)} targets")
    params = dict(block.named_parameters())
    missing = [k for k in weights if k not in params]
    if missing:
        raise QuantError(f"tesseraq_block: the block has no parameter(s) {missing}; it has {sorted(params)}")
    shapes = {k: params[k].shape for k in weights}
    dtypes = {k: params[k].dtype for k in weights}
    state = {k: SoftRounding(w.reshape(w.shape[0], -1), spec, cfg) for k, w in weights.items()}
    numel = sum(t.numel() for t in targets)

    def loss_of(nus: dict[str, Tensor], us: dict[str, Tensor]) -> Tensor:
        over = {k: sr.weight(nus[k], us[k]).reshape(shapes[k]).to(dtypes[k]) for k, sr in state.items()}
        total = torch.zeros((), dtype=torch.float64)
        for args, y in zip(inputs, targets, strict=True):
            out = functional_call(block, over, args)
            total = total + (out.double() - y.double()).pow(2).sum()
        return total / numel

    with torch.enable_grad():
        for quantile in cfg.quantiles:
            thr = _threshold([sr.scores() for sr in state.values()], quantile)
            for sr in state.values():
                sr.harden(thr)
            for _ in range(cfg.steps_per_round):
                nus = {k: sr.nu.detach().requires_grad_(True) for k, sr in state.items()}
                us = {k: sr.u.detach().requires_grad_(cfg.tune_scale) for k, sr in state.items()}
                loss = loss_of(nus, us)
                wrt = [*nus.values(), *(us.values() if cfg.tune_scale else ())]
                grads = torch.autograd.grad(loss, wrt)
                for i, sr in enumerate(state.values()):
                    sr.opt_nu.step(grads[i])
                    if cfg.tune_scale:
                        sr.opt_u.step(grads[len(state) + i])
    out = {k: sr.result() for k, sr in state.items()}
    with torch.no_grad():
        final = {k: lq.dequant().reshape(shapes[k]).to(dtypes[k]) for k, lq in out.items()}
        err = sum(
            float((functional_call(block, final, args).double() - y.double()).pow(2).sum())
            for args, y in zip(inputs, targets, strict=True)
        )
    for lq in out.values():
        lq.loss = err / numel  # the block's reconstruction error, shared by its layers
    return out
