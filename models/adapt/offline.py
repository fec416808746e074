"""Offline (batch) training with the on-device rules, so a deployed net starts aligned with its DFA feedback.

DFA only helps a hidden layer once the layers above have *aligned* with the fixed random feedback
(Nøkland 2016, arXiv 1609.01596: the forward weights come to agree with B during DFA training). A net
pre-trained with backpropagation has no such alignment, and DFA updates of its hidden layers are then
close to random. So a net meant to adapt with DFA on the device is pre-trained with DFA and the same
feedback matrices (seed, mode and scale are saved in the model file's meta under "dfa").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from models.snn.networks import SpikingNet
from models.train import TrainConfig, TrainHistory, evaluate

from .ops import AdaptError
from .rules import BPTT, DFA, output_error
from .trace import NetView, forward_trace

__all__ = ["fit_rule", "dfa_meta"]


def dfa_meta(seed: int = 0, feedback: str = "auto", scale: float | None = None) -> dict[str, Any]:
    """The "dfa" entry of a model file's meta: how to rebuild the feedback matrices it was trained with."""
    return {"seed": int(seed), "feedback": feedback, "scale": scale}


def fit_rule(
    net: SpikingNet,
    x: Tensor,
    y: Tensor,
    cfg: TrainConfig | None = None,
    *,
    rule: str = "dfa",
    encode: Callable[[Tensor], Tensor] | None = None,
    n_classes: int | None = None,
    feedback: str = "auto",
    feedback_scale: float | None = None,
    feedback_seed: int = 0,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
) -> TrainHistory:
    """Mini-batch Adam on the gradients of `rule` ("dfa" or "bp"), computed as on the device
    (`models.adapt.rules`) but in float: x [N, ...], y [N]; `encode` maps a batch to [T, B, ...]."""
    from tqdm.auto import tqdm

    cfg = cfg or TrainConfig()
    enc = encode or (lambda b: b)
    n_classes = int(n_classes if n_classes is not None else y.max() + 1)
    view = NetView(net)
    layers = list(range(len(view.layers)))
    if rule == "dfa":
        learner: DFA | BPTT = DFA(
            view, n_classes, layers, feedback=feedback, scale=feedback_scale, seed=feedback_seed
        )
    elif rule == "bp":
        learner = BPTT(view, n_classes, layers)
    else:
        raise AdaptError(f"offline rule {rule!r}: use 'dfa' or 'bp'")
    modules = dict(net.named_modules())  # the float layers the rules' IdealLayers update: same names
    params = {o.name: modules[o.name] for o in [*view.layers, view.readout]}
    opt = torch.optim.Adam(
        [p for m in params.values() for p in m.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = TrainHistory()
    for _ in tqdm(range(cfg.epochs), desc=cfg.desc, disable=not cfg.progress):
        net.train()
        perm = torch.randperm(len(x), generator=gen)
        tot, correct = 0.0, 0
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            trace = forward_trace(view, enc(x[idx]))
            e = output_error(trace.logits, y[idx]) / len(idx)
            grads, _ = learner.gradients(trace, e)
            for name, (dw, db) in grads.grads.items():
                weight, bias = _weight_and_bias(params[name])
                weight.grad = dw.reshape(weight.shape).clone()
                if bias is not None and db is not None:
                    bias.grad = db.clone()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_([p for m in params.values() for p in m.parameters()], cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            logp = torch.log_softmax(trace.logits, 1)
            tot += float(-logp[torch.arange(len(idx)), y[idx]].sum())
            correct += int((trace.logits.argmax(1) == y[idx]).sum())
        hist.loss.append(tot / len(x))
        hist.train_acc.append(correct / len(x))
        if x_val is not None and y_val is not None:
            hist.val_acc.append(evaluate(net, x_val, y_val, enc))
    net.eval()
    return hist


def _weight_and_bias(module: nn.Module) -> tuple[Tensor, Tensor | None]:
    """A Linear/Conv's weight and bias parameters (bias None when it has none)."""
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    if not isinstance(weight, Tensor):
        raise AdaptError(f"{type(module).__name__} has no weight to train")
    return weight, bias if isinstance(bias, Tensor) else None
