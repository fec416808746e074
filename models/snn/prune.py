"""Magnitude pruning with masks that stay applied through fine-tuning (for sparse accelerators such as LoAS)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Pruner", "magnitude_masks", "gradual_sparsity", "weight_sparsity", "PRUNABLE"]

PRUNABLE: tuple[type[nn.Linear], type[nn.Conv1d], type[nn.Conv2d]] = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _prunable(model: nn.Module, skip: Iterable[str] = ()) -> dict[str, nn.Linear | nn.Conv1d | nn.Conv2d]:
    skip = set(skip)
    return {n: m for n, m in model.named_modules() if isinstance(m, PRUNABLE) and n not in skip}


@torch.no_grad()
def magnitude_masks(
    model: nn.Module, sparsity: float, scope: str = "global", skip: Iterable[str] = ()
) -> dict[str, Tensor]:
    """Boolean keep-masks (True = kept) removing the `sparsity` fraction of smallest |w|.

    scope "global" ranks all prunable weights together (layers end up with different sparsities);
    "layer" prunes each layer to the same fraction. Biases are never pruned. `skip` names modules to keep dense.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity}: must lie in [0, 1)")
    if scope not in ("global", "layer"):
        raise ValueError(f"prune scope {scope!r}: use 'global' or 'layer'")
    mods = _prunable(model, skip)
    if not mods:
        raise ValueError("no Linear/Conv1d/Conv2d weights to prune")

    def thresh(w: Tensor) -> float:
        k = int(sparsity * w.numel())
        return float("-inf") if k == 0 else float(w.flatten().kthvalue(k).values)

    if scope == "global":
        t = thresh(torch.cat([m.weight.abs().flatten() for m in mods.values()]))
        return {n: m.weight.abs() > t for n, m in mods.items()}
    return {n: m.weight.abs() > thresh(m.weight.abs()) for n, m in mods.items()}


def gradual_sparsity(step: int, total_steps: int, final: float, initial: float = 0.0) -> float:
    """Cubic schedule s_t = s_f + (s_i − s_f)(1 − t/n)³ (Zhu & Gupta 2017, 'To prune, or not to prune')."""
    frac = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return final + (initial - final) * (1.0 - frac) ** 3


@torch.no_grad()
def weight_sparsity(model: nn.Module, skip: Iterable[str] = ()) -> dict[str, float]:
    """Fraction of exactly-zero weights per prunable module, plus 'total'."""
    out: dict[str, float] = {}
    zeros = numel = 0
    for n, m in _prunable(model, skip).items():
        z = int((m.weight == 0).sum())
        out[n] = z / m.weight.numel()
        zeros, numel = zeros + z, numel + m.weight.numel()
    out["total"] = zeros / max(numel, 1)
    return out


class Pruner:
    """Holds keep-masks and re-applies them so pruned weights stay exactly zero while fine-tuning.

    Example::

        pruner = Pruner(net)
        pruner.prune(0.97)                      # global magnitude pruning to 97 % sparsity
        pruner.attach(optimizer)                # masks re-applied after every optimizer.step()
        ...train...
        weight_sparsity(net)["total"]           # ≈ 0.97
    """

    def __init__(self, model: nn.Module, skip: Iterable[str] = ()) -> None:
        self.model = model
        self.skip = tuple(skip)
        self.masks: dict[str, Tensor] = {}
        self._handles: list[Any] = []

    def prune(self, sparsity: float, scope: str = "global") -> dict[str, Tensor]:
        """Compute masks at `sparsity` (already-pruned weights are zero, so they stay pruned) and apply them."""
        self.masks = magnitude_masks(self.model, sparsity, scope, self.skip)
        self.apply()
        return self.masks

    @torch.no_grad()
    def apply(self) -> None:
        mods = dict(self.model.named_modules())
        for n, mask in self.masks.items():
            mods[n].weight.mul_(mask.to(mods[n].weight.dtype))

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero masked gradients and re-apply masks after each step (Adam momentum cannot revive weights)."""
        mods = dict(self.model.named_modules())
        for n in self.masks:
            w = mods[n].weight
            self._handles.append(w.register_hook(lambda g, n=n: g * self.masks[n].to(g.dtype)))
        self._handles.append(optimizer.register_step_post_hook(lambda *_: self.apply()))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
