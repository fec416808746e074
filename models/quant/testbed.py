"""A synthetic quantization testbed: Gaussian-mixture classification and a float MLP trained on it [SCIENCE 4.4]."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..mlp import MLP

__all__ = ["Mixture", "gaussian_mixture", "train_mlp", "relative_logit_error", "Testbed", "make_testbed"]


@dataclass(frozen=True)
class Mixture:
    """`classes` × `blobs` Gaussian blobs in `dim` dimensions; blob centres ~ N(0, spread²·I), noise σ = 1."""

    dim: int = 32
    classes: int = 10
    blobs: int = 3
    spread: float = 1.6
    seed: int = 0

    def centres(self) -> Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return self.spread * torch.randn(
            self.classes * self.blobs, self.dim, generator=g, dtype=torch.float64
        )

    def sample(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        c = self.centres()
        k = torch.randint(0, len(c), (n,), generator=g)
        x = c[k] + torch.randn(n, self.dim, generator=g, dtype=torch.float64) / 2
        return x, k // self.blobs


def gaussian_mixture(n: int, seed: int, mixture: Mixture | None = None) -> tuple[Tensor, Tensor]:
    """(x [n, dim] float64, y [n]) from the mixture."""
    return (mixture or Mixture()).sample(n, seed)


def train_mlp(
    sizes: list[int], x: Tensor, y: Tensor, steps: int = 300, lr: float = 3e-3, seed: int = 0
) -> MLP:
    """Full-batch Adam on cross-entropy, float64 (quick, deterministic)."""
    torch.manual_seed(seed)
    net = MLP(sizes).double()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch 2.13: Tensor.backward is unannotated
        opt.step()
    return net.eval()


@torch.no_grad()
def relative_logit_error(model_q: torch.nn.Module, model_fp: torch.nn.Module, x: Tensor) -> float:
    """‖f_q(x) − f_fp(x)‖₂ / ‖f_fp(x)‖₂ over all held-out logits [SCIENCE 4.4 metric]."""
    ref = model_fp(x)
    return float((model_q(x) - ref).norm() / ref.norm())


@dataclass
class Testbed:
    model: MLP
    x_cal: Tensor
    x_test: Tensor
    y_test: Tensor
    fp_accuracy: float


def make_testbed(
    seed: int,
    hidden: int = 256,
    depth: int = 3,
    n_cal: int = 512,
    n_test: int = 5000,
    n_train: int = 4000,
    steps: int = 300,
    mixture: Mixture | None = None,
) -> Testbed:
    """A trained MLP dim-hidden×depth-classes plus disjoint calibration and test sets (all float64)."""
    mix = mixture or Mixture(seed=seed)
    x, y = mix.sample(n_train, seed * 3 + 1)
    xc, _ = mix.sample(n_cal, seed * 3 + 2)
    xt, yt = mix.sample(n_test, seed * 3 + 3)
    net = train_mlp([mix.dim, *([hidden] * depth), mix.classes], x, y, steps=steps, seed=seed)
    with torch.no_grad():
        acc = float((net(xt).argmax(1) == yt).double().mean())
    return Testbed(net, xc, xt, yt, acc)
