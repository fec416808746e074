"""Training loops for classifiers: BPTT through spiking networks (or plain backprop) on in-memory tensors."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .snn.networks import SNNOutput

__all__ = ["TrainConfig", "TrainHistory", "fit", "evaluate", "predict_logits", "logits_of"]

Encode = Callable[[Tensor], Tensor]


@dataclass
class TrainConfig:
    """Adam + cross-entropy on logits; `encode` maps a batch [B, ...] to the model's input ([T, B, ...] for SNNs)."""

    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = True
    desc: str = "train"
    grad_clip: float | None = 1.0
    device: str = "cpu"  # batches are encoded on the CPU, then moved here (the model must already be there)
    #: early stopping: with validation data, stop after this many epochs without a lower validation loss
    #: and restore the weights of the epoch with the lowest one (None: run all epochs, keep the last)
    patience: int | None = None


@dataclass
class TrainHistory:
    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    #: the epoch (1-based) whose weights the model holds after `fit`: the last, or with early stopping
    #: the one with the lowest validation loss
    best_epoch: int = 0
    stopped_early: bool = False


def logits_of(out: Tensor | SNNOutput) -> Tensor:
    """Logits from either a plain tensor output or an `SNNOutput`."""
    return out.logits if isinstance(out, SNNOutput) else out


def _identity(x: Tensor) -> Tensor:
    return x


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: Tensor, encode: Encode | None = None, batch_size: int = 256
) -> Tensor:
    """Logits [N, C] (on the CPU) for samples x [N, ...], in eval mode, batch by batch on the model's device."""
    enc = encode or _identity
    dev = _device_of(model)
    was = model.training
    model.eval()
    try:
        outs = [
            logits_of(model(enc(x[i : i + batch_size]).to(dev))).cpu() for i in range(0, len(x), batch_size)
        ]
    finally:
        model.train(was)
    return torch.cat(outs)


def evaluate(
    model: nn.Module, x: Tensor, y: Tensor, encode: Encode | None = None, batch_size: int = 256
) -> float:
    """Top-1 accuracy in [0, 1]."""
    if len(x) == 0:
        return float("nan")
    return float((predict_logits(model, x, encode, batch_size).argmax(1) == y).float().mean())


def _val_metrics(model: nn.Module, x: Tensor, y: Tensor, encode: Encode) -> tuple[float, float]:
    """(cross-entropy loss, top-1 accuracy) on validation data."""
    logits = predict_logits(model, x, encode)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def fit(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    cfg: TrainConfig | None = None,
    encode: Encode | None = None,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    val_encode: Encode | None = None,
) -> TrainHistory:
    """Train `model` on (x [N, ...], y [N]) with mini-batch Adam; backprop runs through all T steps (BPTT).

    `encode` maps each training batch to the model input (it may be random, e.g. rate coding or a fresh
    event sample per epoch); `val_encode` (default `encode`) does the same for validation. Shows a tqdm
    bar (epochs) with loss and accuracies when `cfg.progress`. Returns per-epoch history.

    With validation data and `cfg.patience`, training stops once `patience` epochs in a row have not
    lowered the validation loss, and the model gets back the weights of the epoch with the lowest one
    (`TrainHistory.best_epoch`).
    """
    from tqdm.auto import tqdm

    cfg = cfg or TrainConfig()
    enc = encode or _identity
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    hist = TrainHistory()
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    best_loss, best_epoch, best_state = math.inf, 0, None
    bar = tqdm(range(cfg.epochs), desc=cfg.desc, disable=not cfg.progress, leave=True)
    for _ in bar:
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        tot, correct, n = 0.0, 0, 0
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            yb = y[idx].to(cfg.device)
            logits = logits_of(model(enc(x[idx]).to(cfg.device)))
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch 2.13: Tensor.backward is unannotated
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            n += len(idx)
        hist.loss.append(tot / max(n, 1))
        hist.train_acc.append(correct / max(n, 1))
        post = {"loss": f"{hist.loss[-1]:.3f}", "acc": f"{hist.train_acc[-1]:.3f}"}
        hist.best_epoch = len(hist.loss)
        if has_val and x_val is not None and y_val is not None:
            vloss, vacc = _val_metrics(model, x_val, y_val, val_encode or enc)
            hist.val_loss.append(vloss)
            hist.val_acc.append(vacc)
            post["val"] = f"{vacc:.3f}"
        bar.set_postfix(post)
        if cfg.patience is None or not hist.val_loss:
            continue
        if hist.val_loss[-1] < best_loss:
            best_loss, best_epoch = hist.val_loss[-1], len(hist.loss)
            best_state = copy.deepcopy(model.state_dict())
        elif len(hist.loss) - best_epoch >= cfg.patience:
            hist.stopped_early = True
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
        hist.best_epoch = best_epoch
    model.eval()
    return hist
