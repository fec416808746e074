"""Online on-device adaptation: infer one window, learn from its label when one arrives, account for both."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from sim_hw.backend import HardwareModel
from sim_hw.cost import CostReport
from sim_hw.learning import (
    UpdateStage,
    feedback_area_mm2,
    learning_energy_pj,
    transposed_area_mm2,
    update_latency_ns,
)

from .ops import AdaptError
from .rules import BPTT, DFA, FEEDBACK, Gradients, output_error
from .trace import NetView, WindowTrace, forward_trace

__all__ = ["RULES", "AdaptConfig", "UpdateReport", "OnlineAdapter"]

RULES = ("none", "dfa", "bp")


@dataclass(frozen=True)
class AdaptConfig:
    """How a deployed model adapts.

    rule: "dfa", "bp" or "none" (frozen baseline). lr: SGD step on the cross-entropy (weights move
    by −lr·gradient, programmed as conductance steps). label_fraction: the share of labelled windows
    whose label is used for learning (drawn per window, seeded). update_every: labelled windows whose
    gradients are summed into one programming step. grad_clip: max L2 norm of one update's gradient
    over all layers (None: off). layers: spiking layers that learn (None: all; the readout always
    learns). feedback/feedback_scale/feedback_bits: DFA's random matrices (see `DFA`). learn_below:
    error-triggered learning: a revealed window is learned only while the model's probability for its
    label is below this (1.0: always); windows it already gets right confidently cost no MVMs and no
    writes, and a stream that dwells on one activity stops pulling the weights towards it.

    Example: `AdaptConfig(rule="dfa", lr=0.01, label_fraction=0.5)`
    """

    rule: Literal["none", "dfa", "bp"] = "dfa"
    lr: float = 0.01
    label_fraction: float = 1.0
    update_every: int = 1
    grad_clip: float | None = 1.0
    layers: tuple[int, ...] | None = None
    learn_bias: bool = True
    feedback: str = "auto"
    feedback_scale: float | None = None
    feedback_bits: int = 2
    learn_below: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise AdaptError(f"rule {self.rule!r}: use one of {', '.join(RULES)}")
        if not 0.0 <= self.label_fraction <= 1.0:
            raise AdaptError(f"label_fraction={self.label_fraction}: must lie in [0, 1]")
        if self.update_every < 1:
            raise AdaptError(f"update_every={self.update_every}: must be >= 1")
        if not self.lr >= 0:
            raise AdaptError(f"lr={self.lr}: must be >= 0")
        if not 0.0 < self.learn_below <= 1.0:
            raise AdaptError(f"learn_below={self.learn_below}: must lie in (0, 1]")


@dataclass
class UpdateReport:
    """One programming step: its learning-phase cost, energy (pJ) and latency (ns) under the rule's
    schedule (DFA: layers in parallel; BP: error handed down layer by layer), pulses written."""

    rule: str
    cost: CostReport
    energy_pj: float
    latency_ns: float
    write_pulses: float
    windows: int


@dataclass
class _Stats:
    windows: int = 0
    labelled: int = 0
    revealed: int = 0
    skipped: int = 0
    updates: int = 0
    correct: int = 0
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=50))
    learning: CostReport = field(default_factory=CostReport)
    inference: CostReport = field(default_factory=CostReport)
    update_latency_ns: list[float] = field(default_factory=list)
    update_energy_pj: list[float] = field(default_factory=list)


class OnlineAdapter:
    """A spiking classifier on emulated hardware that adapts itself, one window at a time.

    `infer(x)` runs x [T, B, ...] on the hardware and returns its trace (logits, records).
    `observe(trace, labels)` scores the prediction (prequential: predict first, then learn), reveals
    the label to learning with probability `label_fraction`, and programs the accumulated update
    every `update_every` revealed windows; it returns the `UpdateReport` of a programming step.
    `age(seconds)` lets device time pass (drift). Costs are split: inference (every forward) and
    learning (error MVMs + programming).

    Example::

        hw = make_backend("rram", prog_noise=0.05).prepare(net)
        ad = OnlineAdapter(hw, AdaptConfig(rule="dfa"), n_classes=6)
        tr = ad.infer(x)                      # x: [T, 1, 6, 128]
        report = ad.observe(tr, torch.tensor([label]))
    """

    def __init__(self, hw: HardwareModel, cfg: AdaptConfig, n_classes: int) -> None:
        self.hw, self.cfg, self.n_classes = hw, cfg, int(n_classes)
        self.view = NetView(hw)
        n = len(self.view.layers)
        layers = list(range(n)) if cfg.layers is None else sorted(set(cfg.layers))
        bad = [i for i in layers if not 0 <= i < n]
        if bad:
            raise AdaptError(f"layers {bad}: the model has spiking layers 0..{n - 1}")
        self.rule: DFA | BPTT | None = None
        if cfg.rule == "dfa":
            self.rule = DFA(
                self.view,
                self.n_classes,
                layers,
                feedback=cfg.feedback,
                scale=cfg.feedback_scale,
                feedback_bits=cfg.feedback_bits,
                seed=cfg.seed,
            )
        elif cfg.rule == "bp":
            self.rule = BPTT(self.view, self.n_classes, layers)
        self.rng = random.Random(cfg.seed)
        self.stats = _Stats()
        self._acc: Gradients | None = None
        self._acc_n = 0
        self._pending: list[CostReport] = []
        self._inference_area = 0.0

    # ----- the loop -------------------------------------------------------------------------------
    def infer(self, x: Tensor) -> WindowTrace:
        trace = forward_trace(self.view, x)
        self.stats.windows += int(trace.logits.shape[0])
        self.stats.inference = self.stats.inference + trace.cost
        self._inference_area = max(self._inference_area, trace.cost.total_area_mm2)
        return trace

    def observe(self, trace: WindowTrace, labels: Tensor) -> UpdateReport | None:
        """Score `trace` against `labels` [B] (−1 = unlabelled) and learn from the revealed ones."""
        labels = labels.reshape(-1).long()
        if len(labels) and int(labels.max()) >= self.n_classes:
            raise AdaptError(
                f"label {int(labels.max())} is not a class of this model (classes 0..{self.n_classes - 1}); "
                "number labels from the model's label_names"
            )
        keep = labels >= 0
        if not bool(keep.any()):
            return None
        hits = (trace.logits.argmax(1) == labels)[keep]
        st = self.stats
        st.labelled += int(keep.sum())
        st.correct += int(hits.sum())
        st.recent.extend(int(h) for h in hits)
        if self.rule is None or self.cfg.lr == 0:
            return None
        reveal = (
            torch.tensor([self.rng.random() < self.cfg.label_fraction for _ in range(len(labels))]) & keep
        )
        if not bool(reveal.any()):
            return None
        if self.cfg.learn_below < 1.0:
            p_true = torch.softmax(trace.logits.float(), 1)[torch.arange(len(labels)), labels.clamp(min=0)]
            skip = reveal & (p_true >= self.cfg.learn_below)
            st.skipped += int(skip.sum())
            reveal &= ~skip
            if not bool(reveal.any()):
                return None
        st.revealed += int(reveal.sum())
        sub = _select(trace, reveal)
        with self.hw.capture() as cap:
            grads, extra = self.rule.gradients(sub, output_error(sub.logits, labels[reveal]))
            self.hw.add_cost(extra)  # the feedback MVM: charged to the model, and so to this capture
        self._pending.append(cap.cost)
        self._accumulate(grads)
        if self._acc_n < self.cfg.update_every:
            return None
        return self._program()

    def age(self, seconds: float) -> None:
        """Let `seconds` of device time pass (conductance drift on RRAM)."""
        if seconds > 0:
            self.hw.age(seconds)

    # ----- updates --------------------------------------------------------------------------------
    def _accumulate(self, grads: Gradients) -> None:
        if self._acc is None:
            self._acc = grads
        else:
            for name, (dw, db) in grads.grads.items():
                w0, b0 = self._acc.grads[name]
                self._acc.grads[name] = (w0 + dw, None if b0 is None or db is None else b0 + db)
        self._acc_n += 1

    def _program(self) -> UpdateReport:
        acc, self._acc, n = self._acc, None, self._acc_n
        self._acc_n = 0
        assert acc is not None and self.rule is not None  # called only after _accumulate
        norm = math.sqrt(
            sum(
                float(dw.square().sum()) + (0.0 if db is None else float(db.square().sum()))
                for dw, db in acc.grads.values()
            )
        )
        clip = self.cfg.grad_clip
        factor = -self.cfg.lr * (clip / norm if clip is not None and norm > clip else 1.0)
        ops = {o.name: o for o in [*self.view.layers, self.view.readout]}
        with self.hw.capture() as cap:
            for name in acc.order:
                dw, db = acc.grads[name]
                ops[name].program(
                    dw * factor, db * factor if db is not None and self.cfg.learn_bias else None
                )
        cost = sum(self._pending, cap.cost)
        self._pending = []
        report = UpdateReport(
            self.rule.name,
            cost,
            learning_energy_pj(cost)["total"],
            self._latency(cost, acc.order),
            _count(cost, "write_pulses"),
            n,
        )
        st = self.stats
        st.updates += 1
        st.learning = st.learning + cost
        st.update_latency_ns.append(report.latency_ns)
        st.update_energy_pj.append(report.energy_pj)
        return report

    def _latency(self, cost: CostReport, order: list[str]) -> float:
        """Update latency under the rule's schedule, from the learning-phase entries of `cost`."""
        lat = {(c.name, c.phase): c.latency_ns for c in cost.layers}

        def get(name: str) -> float:
            return lat.get((name, "learning"), 0.0)

        assert self.rule is not None
        if self.rule.schedule == "parallel":  # one feedback MVM feeds every hidden layer (not the readout)
            stages = [
                UpdateStage(n, 0.0 if n == self.view.readout.name else get(FEEDBACK), get(n)) for n in order
            ]
        else:
            stages, above = [], ""
            for n in order:  # output first: a layer's error arrives through the transposed read above it
                stages.append(UpdateStage(n, get(f"{above}.T") if above else 0.0, get(n)))
                above = n
        return update_latency_ns(stages, self.rule.schedule)

    # ----- reporting ------------------------------------------------------------------------------
    @property
    def accuracy(self) -> float:
        st = self.stats
        return st.correct / st.labelled if st.labelled else float("nan")

    @property
    def recent_accuracy(self) -> float:
        r = self.stats.recent
        return sum(r) / len(r) if r else float("nan")

    def area_mm2(self) -> dict[str, float]:
        """Inference crossbars, the rule's extra learning hardware, and their sum (mm²)."""
        backend = self.hw.backend
        extra = 0.0
        if isinstance(self.rule, DFA):
            extra = feedback_area_mm2(self.rule.fb_backend, self.rule.feedback_shapes())
        elif isinstance(self.rule, BPTT):
            lowest = min(self.rule.adapt, default=len(self.view.layers))
            read = [self.view.readout] + [
                self.view.layers[i] for i in range(lowest + 1, len(self.view.layers))
            ]
            extra = transposed_area_mm2(backend, [(o.in_features, o.out_features) for o in read])
        return {
            "inference_mm2": self._inference_area,
            "learning_mm2": extra,
            "total_mm2": self._inference_area + extra,
        }

    def summary(self) -> dict[str, float]:
        """Plain numbers for logs, messages and benchmarks."""
        st = self.stats
        return {
            "windows": st.windows,
            "labelled": st.labelled,
            "revealed": st.revealed,
            "skipped": st.skipped,
            "updates": st.updates,
            "accuracy": self.accuracy,
            "recent_accuracy": self.recent_accuracy,
            "inference_energy_pj": st.inference.total_energy_pj,
            "inference_energy_pj_per_window": st.inference.total_energy_pj / max(st.windows, 1),
            "learning_energy_pj": st.learning.total_energy_pj,
            "learning_energy_pj_per_window": st.learning.total_energy_pj / max(st.labelled, 1),
            "energy_pj_per_update": _mean(st.update_energy_pj),
            "latency_ns_per_update": _mean(st.update_latency_ns),
            **self.area_mm2(),
        }


def _select(trace: WindowTrace, mask: Tensor) -> WindowTrace:
    """The samples of `trace` where `mask` [B] is true."""
    if bool(mask.all()):
        return trace
    recs = tuple(type(r)(*(f[:, mask] for f in r)) for r in trace.records)
    return WindowTrace(trace.logits[mask], recs, trace.features[:, mask], trace.cost)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _count(cost: CostReport, key: str) -> float:
    return float(sum(c.counts.get(key, 0.0) for c in cost.layers if c.phase == "learning"))
