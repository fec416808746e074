"""Online learning rules for spiking nets on emulated crossbars: DFA (layer-parallel) and BPTT (sequential).

Both take one forward pass (`WindowTrace`) and the output error e = softmax(logits) − onehot(y)
and return per-layer weight and bias gradients (of the cross-entropy, or DFA's stand-in for it),
in the [M, K] crossbar layout. They differ only in how a hidden layer learns its error:

- DFA [Nøkland, arXiv 1609.01596; SNN form in SCIENCE 3.4]: δ_l[t] = (B_l·e/T) ⊙ σ′(v′_l[t] − θ),
  ΔW_l = Σ_t δ_l[t]·s_{l−1}[t]ᵀ with a fixed random B_l; no weight transport, no recursion in time,
  all layers at once. The B_l share their input e, so they sit side by side in one feedback crossbar
  (C rows × Σ_l n_l columns): one small MVM per update gives every layer its error.
- BPTT: the exact surrogate gradient through the LIF dynamics (reset detached, as snnTorch),
  with every W_lᵀ product read transposed through the layer's own devices (noisy on RRAM).

The readout (non-spiking, logits = (1/T)·Σ_t W_out·h_t + b) uses its true gradient in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from sim_hw.backend import Backend
from sim_hw.cost import CostReport
from sim_hw.ideal import IdealBackend, IdealConfig
from sim_hw.learning import feedback_backend

from .ops import AdaptError, LayerOps
from .trace import NetView, WindowTrace

__all__ = ["Gradients", "DFA", "BPTT", "output_error", "FEEDBACK_MODES", "FEEDBACK"]

FEEDBACK_MODES = ("auto", "full", "channel")
FEEDBACK = "dfa.feedback"  # cost entry of the feedback crossbar


@dataclass
class Gradients:
    """Per adapted layer (by hardware layer name): weight gradient [M, K] and bias gradient [M] or None;
    `order` lists names from the output down (the order BP's error travels)."""

    grads: dict[str, tuple[Tensor, Tensor | None]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def add(self, ops: LayerOps, dw: Tensor, db: Tensor | None) -> None:
        self.grads[ops.name] = (dw, db)
        self.order.append(ops.name)


def output_error(logits: Tensor, labels: Tensor) -> Tensor:
    """e = softmax(logits) − onehot(labels): the cross-entropy gradient on the logits, [B, C]."""
    e = torch.softmax(logits.float(), dim=1)
    e[torch.arange(len(labels)), labels] -= 1.0
    return e


def _flat(x: Tensor) -> Tensor:
    """[T, B, ...] → [T·B, ...]."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _readout_grads(view: NetView, trace: WindowTrace, e: Tensor, out: Gradients) -> Tensor:
    """Add the readout's true gradient; return g = e/T repeated per step [T·B, C]."""
    t = trace.timesteps
    g = (e / t).unsqueeze(0).expand(t, *e.shape)
    out.add(view.readout, view.readout.weight_grad(_flat(trace.features), _flat(g)), e.sum(0))
    return g


class DFA:
    """Direct Feedback Alignment with fixed random feedback B_l (entries ±scale, seeded).

    `feedback`: "full" gives every output neuron of layer l its own row of B_l ([n_l, C]); "channel"
    gives each output *channel* of a conv layer one row, shared over positions ([C_out, C]), which
    keeps the feedback crossbar small; "auto" = channel for conv layers, full for linear ones.
    `adapt` lists the spiking layers (0 = first) that learn; the readout always learns.

    Example::

        rule = DFA(view, n_classes=6)
        grads, cost = rule.gradients(trace, output_error(trace.logits, y))
    """

    name = "dfa"
    schedule: Literal["parallel", "sequential"] = "parallel"

    def __init__(
        self,
        view: NetView,
        n_classes: int,
        adapt: list[int],
        *,
        feedback: str = "auto",
        scale: float | None = None,
        feedback_bits: int = 2,
        seed: int = 0,
    ) -> None:
        if feedback not in FEEDBACK_MODES:
            raise AdaptError(f"feedback {feedback!r}: use one of {FEEDBACK_MODES}")
        self.view, self.n_classes, self.adapt = view, int(n_classes), list(adapt)
        self.feedback = feedback
        self.scale = 1.0 if scale is None else float(scale)
        self.seed = int(seed)
        base = view.hw.backend if view.hw is not None else IdealBackend(IdealConfig())
        self.fb_backend: Backend = feedback_backend(base, feedback_bits)
        self.B: dict[int, Tensor] = {}  # layer index → [rows, C], built on first use (shapes from a trace)

    def _matrix(self, i: int, out_shape: tuple[int, ...]) -> Tensor:
        if i not in self.B:
            mode = self.feedback
            if mode == "auto":
                mode = "channel" if len(out_shape) >= 2 else "full"
            rows = out_shape[0] if mode == "channel" else int(torch.tensor(out_shape).prod())
            gen = torch.Generator().manual_seed(
                self.seed * 7919 + 101 * i + 17
            )  # per layer: same B offline/online
            sign = torch.randint(0, 2, (rows, self.n_classes), generator=gen).float() * 2 - 1
            self.B[i] = sign * self.scale
        return self.B[i]

    def feedback_shapes(self) -> list[tuple[int, int]]:
        """(rows = n_classes, cols = n_l) of every feedback matrix B_lᵀ, by layer index."""
        return [(self.n_classes, b.shape[0]) for _, b in sorted(self.B.items())]

    def gradients(self, trace: WindowTrace, e: Tensor) -> tuple[Gradients, CostReport]:
        view, out = self.view, Gradients()
        _readout_grads(view, trace, e, out)
        t = trace.timesteps
        rows = 0
        for i in sorted(self.adapt, reverse=True):
            rec = trace.records[i]
            out_shape = tuple(rec.membrane.shape[2:])
            b = self._matrix(i, out_shape)
            rows += b.shape[0]
            fb = e @ b.t()  # [B, rows]: this layer's columns of the shared feedback crossbar
            if (
                b.shape[0] == out_shape[0]
            ):  # one row per channel (or a linear layer): broadcast over positions
                fb = fb.reshape(fb.shape[0], out_shape[0], *([1] * (len(out_shape) - 1)))
            else:
                fb = fb.reshape(fb.shape[0], *out_shape)
            delta = (fb / t).unsqueeze(0) * view.surrogate(i, rec.membrane)
            ops = view.layers[i]
            out.add(ops, ops.weight_grad(_flat(rec.input), _flat(delta)), ops.bias_grad(_flat(delta)))
        if not rows:
            return out, CostReport()
        # every B_l is driven by the same e: one crossbar [C rows × Σ n_l columns], one MVM for all layers
        return out, self.fb_backend.cost_mvm(self.n_classes, rows, n=len(e), phase="learning", name=FEEDBACK)


class BPTT:
    """Backpropagation through time with the backward products read transposed through the crossbars.

    The recursion per spiking layer (reset detached; r_t = 1 for subtract reset, 1 − s_t for zero):
    g_v′[t] = g_s[t]·σ′(v′[t] − θ) + β·r_t·g_v′[t+1];  ΔW = Σ_t g_v′[t]·x[t]ᵀ;  g_x[t] = W_lᵀ·g_v′[t]
    (transposed read), then through the pooling/flatten between layers by autograd on the recorded
    spikes. It stops below the lowest adapted layer.
    """

    name = "bp"
    schedule: Literal["parallel", "sequential"] = "sequential"

    def __init__(self, view: NetView, n_classes: int, adapt: list[int]) -> None:
        self.view, self.n_classes, self.adapt = view, int(n_classes), list(adapt)

    def gradients(self, trace: WindowTrace, e: Tensor) -> tuple[Gradients, CostReport]:
        view, out = self.view, Gradients()
        t = trace.timesteps
        _readout_grads(view, trace, e, out)
        # e/T is the same at every step, so one transposed read of the readout serves all T steps
        g_feat = view.readout.transposed(e / t, trace.features[0])
        g_h = g_feat.unsqueeze(0).expand(t, *g_feat.shape)
        lowest = min(self.adapt, default=len(view.layers))
        for i in range(len(view.layers) - 1, lowest - 1, -1):
            rec = trace.records[i]
            g_s = self._through_between(i, rec.spikes, g_h)
            sg = view.surrogate(i, rec.membrane)
            p = view.lif[i]
            beta = p.beta if isinstance(p.beta, Tensor) else torch.tensor(float(p.beta))
            keep = torch.ones_like(rec.spikes) if p.reset == "subtract" else 1.0 - rec.spikes
            g_v = torch.empty_like(rec.membrane)
            carry = torch.zeros_like(rec.membrane[0])
            for step in range(t - 1, -1, -1):
                carry = g_s[step] * sg[step] + beta * keep[step] * carry
                g_v[step] = carry
            ops = view.layers[i]
            if i in self.adapt:
                out.add(ops, ops.weight_grad(_flat(rec.input), _flat(g_v)), ops.bias_grad(_flat(g_v)))
            if i > lowest:
                g_h = ops.transposed(_flat(g_v), _flat(rec.input)).reshape(rec.input.shape)
        return out, CostReport()

    def _through_between(self, i: int, spikes: Tensor, g: Tensor) -> Tensor:
        """Gradient on layer i's spikes from the gradient on what follows them (pool/flatten)."""
        with torch.enable_grad():
            s = spikes.detach().clone().requires_grad_(True)
            y = self.view.between(i, s)
            (gs,) = torch.autograd.grad(y, s, g.reshape(y.shape))
        return gs
