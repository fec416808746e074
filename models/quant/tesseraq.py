"""TesseraQ: progressive adaptive rounding (PAR) with dequantization-scale tuning (DST), per layer or per block."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .clip import awq_clip, clipped_scale_zero
from .gptq import LayerQuant
from .quantizer import QuantError, QuantSpec, rtn

__all__ = [
    "TesseraQConfig",
    "SoftRounding",
    "tesseraq",
    "tesseraq_gram",
    "tesseraq_block",
    "PAR_QUANTILES",
    "INITS",
    "SCALE_PARAMS",
]

INITS = ("awq-clip", "minmax")
SCALE_PARAMS = ("rectified", "sigmoid")

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
    """PAR/DST settings; the defaults follow the reference (ModelTC/llmc `tesseraq.py`) [SCIENCE 4.8.4].

    The paper runs 250 Adam steps per round at lr 1e-3 on LLM blocks; a small layer or MLP converges in
    far fewer, so the defaults here are 60 steps at lr 1e-2. Each reference choice can be switched off so
    the bench can show what it contributes: `per_layer_quantile` (False: one quantile pooled over the
    block's layers), `fresh_optimizer` (False: Adam state carried across rounds), `scale_param`
    ("rectified": c = 2·clamp(1.2σ(u) − 0.1, 0, 1) as the reference; "sigmoid": c = 2σ(u)), `batch_size`
    (block reconstruction: random rows per step; None = every row every step) and `init` ("awq-clip":
    AWQ's clipping search as the starting scales; "minmax": plain min-max RTN).
    """

    steps_per_round: int = 60
    lr: float = 1e-2
    scale_lr: float = 1e-3
    weight_decay: float = 1e-4  # on the DST variables [SCIENCE 4.3]
    tune_scale: bool = True
    quantiles: tuple[float, ...] = PAR_QUANTILES
    #: target mix for `quantize_model`: Y = W·((1 − a)·X_q + a·X_fp); 1 = the full-precision block output
    #: (the paper's reconstruction target), 0 = the layer's own output on its quantized inputs.
    target_alpha: float = 1.0
    per_layer_quantile: bool = True
    fresh_optimizer: bool = True
    scale_param: str = "rectified"
    batch_size: int | None = 64
    init: str = "awq-clip"
    seed: int = 0  # mini-batch sampling

    def __post_init__(self) -> None:
        if self.scale_param not in SCALE_PARAMS:
            raise QuantError(
                f"TesseraQ scale_param {self.scale_param!r}: use one of {', '.join(SCALE_PARAMS)}"
            )
        if self.init not in INITS:
            raise QuantError(f"TesseraQ init {self.init!r}: use one of {', '.join(INITS)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise QuantError(
                f"TesseraQ batch_size {self.batch_size}: use a positive int or None (full batch)"
            )


def _sig(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _soft_rounding(nu: Tensor) -> Tensor:
    """h = clamp(1.2σ(ν) − 0.1, 0, 1): the rectified sigmoid of adaptive rounding."""
    return (1.2 * _sig(nu) - 0.1).clamp(0.0, 1.0)


def _scale_factor(u: Tensor, param: str) -> Tensor:
    """The DST factor c ∈ [0, 2], 1 at u = 0: 2·h(u) (reference) or 2σ(u)."""
    return 2 * _soft_rounding(u) if param == "rectified" else 2 * _sig(u)


def _scale_factor_grad(u: Tensor, param: str) -> Tensor:
    """dc/du for `_scale_factor` (0 where the rectified sigmoid is clamped)."""
    sg = _sig(u)
    if param == "sigmoid":
        return 2 * sg * (1 - sg)
    hs = 1.2 * sg - 0.1
    return 2.4 * sg * (1 - sg) * ((hs > 0) & (hs < 1))


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

    Ŵ = s·c(u) ⊙ (clamp(⌊W/s⌋ + h + z, 0, 2^b − 1) − z), soft rounding h = clamp(1.2σ(ν) − 0.1, 0, 1)
    started at frac(W/s); s, z from min-max of W, or of W clamped to ±`clip` [rows, groups] (AWQ-style
    start); c(u) per row/group starts at 1 (see `TesseraQConfig.scale_param`).
    Shared by the layer-wise solver (hand-written gradients) and block reconstruction (autograd).
    """

    def __init__(self, w: Tensor, spec: QuantSpec, cfg: TesseraQConfig, clip: Tensor | None = None) -> None:
        w = w.detach().double()
        self.spec, self.cfg = spec, cfg
        cols = w.shape[1]
        self.g_idx = torch.arange(cols) // (spec.group_size or cols)
        if clip is None:
            _, self.s0, self.z = rtn(w, spec)
        else:
            self.s0, self.z = clipped_scale_zero(w, spec, clip.double())
        self.s_col, self.z_col = self.s0[:, self.g_idx], self.z[:, self.g_idx]
        self.base = torch.floor(w / self.s_col)
        frac = (w / self.s_col - self.base).clamp(0.0, 1.0)
        self.nu = torch.logit(((frac + 0.1) / 1.2).clamp(1e-4, 1 - 1e-4))
        self.u = torch.zeros_like(self.s0)
        self.hard = torch.zeros_like(w, dtype=torch.bool)
        self.hard_val = torch.zeros_like(w)
        self.new_optimizers()

    def new_optimizers(self) -> None:
        """Fresh Adam state (the reference builds a new optimizer every PAR round)."""
        self.opt_nu = _Adam(self.nu, self.cfg.lr)
        self.opt_u = _Adam(self.u, self.cfg.scale_lr, self.cfg.weight_decay)

    def factor(self, u: Tensor) -> Tensor:
        return _scale_factor(u, self.cfg.scale_param)

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
        return self.s_col * self.factor(u)[:, self.g_idx] * (q - self.z_col)

    def step_from_weight_grad(self, grad_w: Tensor) -> None:
        """One Adam step on ν and u given dL/dŴ, with the chain rule written out (no autograd graph)."""
        sg = _sig(self.nu)
        hs = 1.2 * sg - 0.1
        h = torch.where(self.hard, self.hard_val, hs.clamp(0.0, 1.0))
        pre = self.base + h + self.z_col
        q = pre.clamp(0, self.spec.maxq)
        c = self.factor(self.u)[:, self.g_idx]
        inside = (pre > 0) & (pre < self.spec.maxq)
        soft_inside = (hs > 0) & (hs < 1) & ~self.hard
        self.opt_nu.step(grad_w * self.s_col * c * inside * (1.2 * sg * (1 - sg)) * soft_inside)
        if self.cfg.tune_scale:
            g_c = torch.zeros(self.s0.shape, dtype=grad_w.dtype).index_add_(
                1, self.g_idx, grad_w * self.s_col * (q - self.z_col)
            )
            self.opt_u.step(g_c * _scale_factor_grad(self.u, self.cfg.scale_param))

    def result(self, loss: float = 0.0) -> LayerQuant:
        """Harden what is left by h ≥ 0.5 and fold c into the scale."""
        h = torch.where(self.hard, self.hard_val, (_soft_rounding(self.nu) >= 0.5).double())
        q = torch.clamp(self.base + h + self.z_col, 0, self.spec.maxq)
        scale = self.s0 * self.factor(self.u) if self.cfg.tune_scale else self.s0
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
    sr = SoftRounding(w, spec, cfg, awq_clip(w, a, spec) if cfg.init == "awq-clip" else None)
    bt = b.T
    for r, quantile in enumerate(cfg.quantiles):
        sr.harden(_threshold([sr.scores()], quantile))
        if cfg.fresh_optimizer and r:
            sr.new_optimizers()
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
    grams: dict[str, Tensor] | None = None,
) -> dict[str, LayerQuant]:
    """Block reconstruction: quantize several weights of `block` jointly so its outputs match `targets`.

    `weights` maps parameter names inside the block (e.g. ``"0.weight"``) to the float weights to quantize,
    flattened to [out, in·k] like a Linear's (the block's parameter keeps its own shape);
    `inputs[k]` are the positional arguments of the block's k-th calibration call (from the already
    quantized model) and `targets[k]` the output it should give (the float block on float inputs). The loss
    is the mean squared error, and gradients come from autograd through the block's own forward, so a
    later layer's rounding can make up for an earlier one's: the paper's setting [SCIENCE 4.3]. The PAR
    quantile is taken per layer (or over the block's roundings together with `per_layer_quantile=False`).
    With `cfg.batch_size` each step uses that many random rows (dim 0 of the target and of every tensor
    argument of the same length, drawn over all calls); None runs every call every step. `grams` (A =
    XᵀX/n of each weight's input rows) feeds the AWQ-style clipping start (`init="awq-clip"`); without it
    the start is min-max. The block must not keep state between calls.
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
    state = {}
    for k, w in weights.items():
        w2 = w.reshape(w.shape[0], -1).double()
        clip = awq_clip(w2, grams[k], spec) if cfg.init == "awq-clip" and grams and k in grams else None
        state[k] = SoftRounding(w2, spec, cfg, clip)
    numel = sum(t.numel() for t in targets)
    sampler = _RowSampler(inputs, targets, cfg.batch_size, cfg.seed)

    def loss_of(nus: dict[str, Tensor], us: dict[str, Tensor]) -> Tensor:
        over = {k: sr.weight(nus[k], us[k]).reshape(shapes[k]).to(dtypes[k]) for k, sr in state.items()}
        total, count = torch.zeros((), dtype=torch.float64), 0
        for args, y in sampler.draw():
            out = functional_call(block, over, args)
            total = total + (out.double() - y.double()).pow(2).sum()
            count += y.numel()
        return total / count

    with torch.enable_grad():
        for r, quantile in enumerate(cfg.quantiles):
            if cfg.per_layer_quantile:
                for sr in state.values():
                    sr.harden(_threshold([sr.scores()], quantile))
            else:
                thr = _threshold([sr.scores() for sr in state.values()], quantile)
                for sr in state.values():
                    sr.harden(thr)
            if cfg.fresh_optimizer and r:
                for sr in state.values():
                    sr.new_optimizers()
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


class _RowSampler:
    """Random mini-batches of rows over a block's calibration calls (the reference draws `batch_size`
    sample indices per step); `batch_size=None` yields every call whole."""

    def __init__(
        self, inputs: Sequence[tuple[Any, ...]], targets: Sequence[Tensor], batch_size: int | None, seed: int
    ) -> None:
        self.inputs, self.targets = inputs, targets
        self.sizes = [int(t.shape[0]) if t.dim() else 1 for t in targets]
        total = sum(self.sizes)
        self.batch = batch_size if batch_size is not None and batch_size < total else None
        self.gen = torch.Generator().manual_seed(seed)
        self.starts = torch.tensor([0, *self.sizes]).cumsum(0)
        if self.batch is not None:
            for k, (args, y) in enumerate(zip(inputs, targets, strict=True)):
                if y.dim() == 0 or not any(
                    isinstance(a, Tensor) and a.dim() and a.shape[0] == y.shape[0] for a in args
                ):
                    raise QuantError(
                        f"tesseraq_block: call {k} has no tensor argument with the target's {self.sizes[k]} rows "
                        "to draw mini-batches from; set TesseraQConfig(batch_size=None)"
                    )

    def draw(self) -> list[tuple[tuple[Any, ...], Tensor]]:
        if self.batch is None:
            return list(zip(self.inputs, self.targets, strict=True))
        picked = torch.randperm(int(self.starts[-1]), generator=self.gen)[: self.batch]
        out = []
        for k, (args, y) in enumerate(zip(self.inputs, self.targets, strict=True)):
            lo, hi = int(self.starts[k]), int(self.starts[k + 1])
            rows = picked[(picked >= lo) & (picked < hi)] - lo
            if len(rows) == 0:
                continue
            n = y.shape[0]
            sub = tuple(a[rows] if isinstance(a, Tensor) and a.dim() and a.shape[0] == n else a for a in args)
            out.append((sub, y[rows]))
        return out
