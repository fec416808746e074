"""On-device adaptation nodes: an SNN classifier on emulated RRAM that learns from labels, and its report.

`adapt.dfa` / `adapt.bp` learn with Direct Feedback Alignment / backpropagation through time.
Weight sharing: the classifier and its adapter are **one node** that owns the emulated crossbars.
It infers every window (the prediction goes out at once, to the actuator) and, when that window's
label arrives, learns from the records of that same forward pass and programs the devices. So no
weights, membranes or spikes cross a node boundary, inference never reads a half-programmed array,
and nothing is ever pickled. `adapt.none` is the same node frozen (the baseline). `adapt.report`
draws live accuracy of several adapters and writes a cost table at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from models.adapt import AdaptConfig, AdaptError, OnlineAdapter, WindowTrace
from models.adapt.har import HarInput
from models.adapt.report import AccuracyPlot, cost_table, ratios
from models.io import Checkpoint, ModelFileError, load_checkpoint
from nodes.builtin._params import param_errors
from nodes.builtin._prediction import prediction
from nodes.pretrained.har import pretrain_spec, pretrained_model
from runtime.errors import EdgeloopError, GraphError, HardwareError, NodeError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams
from sim_hw import BackendConfigError, make_backend, resolve_backend_spec

__all__ = ["AdaptiveClassifier", "DfaAdapter", "BpAdapter", "FrozenClassifier", "AdaptReport"]


class AdaptiveClassifier(Node):
    """Window `x` [size, 6] → `pred` {class, label, confidence}; window `label` [size] ints (majority
    label, −1 = none) → learning; `stats` after every scored window (accuracy, costs).

    `x` and `label` windows are paired by sensing time (both come from the same samples).
    """

    inputs = ("x", "label")
    outputs = ("pred", "stats")
    rule: ClassVar[Literal["none", "dfa", "bp"]] = "none"
    file_params = ("model",)

    class Params(NodeParams):
        model: str | None = Field(
            None, description="model file (models.io); None: pre-train (see `pretrain`)"
        )
        pretrain: Literal["synthetic"] | list[str] | None = Field(
            "synthetic", description="no model file: train on synthetic subjects or on these CSV files/globs"
        )
        pretrain_options: dict[str, Any] = Field(default_factory=dict, description="PretrainSpec fields")
        cache_dir: str = "out/har_wearable"
        backend: str | dict[str, Any] = "rram"
        lr: float = Field(0.01, ge=0, description="SGD step (norm of one clipped update)")
        label_fraction: float = Field(1.0, ge=0, le=1)
        update_every: int = Field(1, ge=1)
        learn_below: float = Field(
            0.6, gt=0, le=1, description="error-triggered learning: learn a window only while p(label) < this"
        )
        layers: list[int] | None = None
        grad_clip: float | None = Field(1.0, gt=0)
        drift_s_per_window: float = Field(
            0.0, ge=0, description="device seconds each window ages the crossbars"
        )
        seed: int = 0
        log_every: int = Field(25, ge=0)
        torch_threads: int | None = Field(
            1,
            ge=1,
            description="torch intra-op threads of this agent's process "
            "(1: tiny models gain nothing from more, and contend on busy CPUs)",
        )

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        if ctx.params.torch_threads:
            torch.set_num_threads(ctx.params.torch_threads)
        with param_errors(ctx, "backend", catch=BackendConfigError):
            self.kind, self.hw_params = resolve_backend_spec(ctx.params.backend, ctx.backend_override)
            make_backend(self.kind, **self.hw_params)  # fail at setup on a wrong kind or parameter
        with param_errors(ctx):  # pretrain_spec names the key at fault
            recordings = [] if ctx.params.pretrain in (None, "synthetic") else ctx.params.pretrain
            self.spec = pretrain_spec(ctx.params.pretrain_options, recordings)
        self.adapter: OnlineAdapter | None = None
        self.xs: dict[int, WindowTrace] = {}  # t_sense → forward trace awaiting its label
        self.labels: dict[int, int] = {}  # t_sense → label awaiting its window
        self.names: list[str] = []
        self.n_classes = 0

    def _load(self) -> tuple[OnlineAdapter, HarInput]:
        """Model file (or pre-train one), map it onto the backend, build the adapter (in a thread)."""
        p = self.ctx.params
        path = p.model
        if path is None or not Path(path).exists():
            if p.pretrain is None:
                raise GraphError(
                    f"node '{self.ctx.node_id}': model file {path!r} not found and pretrain is off"
                )
            self.ctx.log.info(
                "no model file: pre-training one (about a minute, once; cached under %s)", p.cache_dir
            )
            path = str(pretrained_model(self.spec, p.cache_dir))
        ck = load_checkpoint(path)
        prep = HarInput.from_meta(ck.meta)
        self.names = list(ck.meta.get("label_names") or [])
        dfa = ck.meta.get("dfa") or {}
        layers = p.layers
        if self.rule == "dfa" and layers is None and not dfa:
            layers = []  # a BP-trained net is not aligned with random feedback: adapt the readout only
            self.ctx.log.warning("model was not pre-trained with DFA: adapting the readout only")
        hw = make_backend(self.kind, **{**self.hw_params}).prepare(ck.model)
        cfg = AdaptConfig(
            rule=self.rule,
            lr=p.lr,
            label_fraction=p.label_fraction,
            update_every=p.update_every,
            learn_below=p.learn_below,
            grad_clip=p.grad_clip,
            layers=None if layers is None else tuple(layers),
            feedback=dfa.get("feedback", "auto"),
            feedback_scale=dfa.get("scale"),
            seed=int(dfa.get("seed", p.seed)),
        )
        self.n_classes = _n_classes(ck)
        return OnlineAdapter(hw, cfg, self.n_classes), prep

    async def on_input(self, port: str, msg: Message) -> None:
        if self.adapter is None:
            try:
                self.adapter, self.prep = await asyncio.to_thread(self._load)
            except EdgeloopError:
                raise
            except BackendConfigError as exc:
                raise HardwareError(f"node '{self.ctx.node_id}': {exc}") from exc
            except (ModelFileError, AdaptError, OSError, ValueError) as exc:
                raise NodeError(f"node '{self.ctx.node_id}': {exc}") from exc
        t = msg.t_sense_ns
        if port == "x":
            try:
                trace = await asyncio.to_thread(self._infer, np.asarray(msg.payload, np.float32))
            except AdaptError as exc:
                raise NodeError(f"node '{self.ctx.node_id}', input 'x': {exc}") from exc
            await self.ctx.emit("pred", prediction(trace.logits[0], self.names), t_sense=msg)
            self.xs[t] = trace
        else:
            lab = np.asarray(msg.payload).reshape(-1)
            lab = lab[lab >= 0]
            if len(lab) and int(lab.max()) >= self.n_classes:
                raise NodeError(self._unknown_label(int(lab.max())))
            self.labels[t] = int(np.bincount(lab).argmax()) if len(lab) else -1
        if t in self.xs and t in self.labels:
            await self._learn(t, msg)
        for d in (self.xs, self.labels):  # bounded: a partner that never comes is forgotten
            while len(d) > 64:
                d.pop(next(iter(d)))

    def _unknown_label(self, label: int) -> str:
        classes = ", ".join(
            f"{i} {self.names[i] if i < len(self.names) else '?'}" for i in range(self.n_classes)
        )
        return (
            f"node '{self.ctx.node_id}', input 'label': label {label} is not a class of the model "
            f"(classes: {classes}); number the labels from the model (imu.replay: label_names set to "
            "the model file or its class names) or train a model that knows this class"
        )

    def _infer(self, window: np.ndarray) -> WindowTrace:
        assert self.adapter is not None
        self.adapter.age(self.ctx.params.drift_s_per_window)
        return self.adapter.infer(self.prep(window))

    async def _learn(self, t: int, msg: Message) -> None:
        assert self.adapter is not None
        trace, label = self.xs.pop(t), self.labels.pop(t)
        if label < 0:  # an unlabelled window: nothing to score or learn
            self.ctx.counter("unlabelled")
            return
        report = await asyncio.to_thread(self.adapter.observe, trace, torch.tensor([label]))
        s = self.adapter.summary()
        hit = int(trace.logits.argmax(1)[0]) == label
        self.ctx.counter("windows")
        self.ctx.gauge("accuracy", s["accuracy"])
        await self.ctx.emit(
            "stats",
            {"rule": self.rule, "correct": bool(hit), "label": label, "updated": report is not None, **s},
            t_sense=msg,
        )
        n, every = int(s["labelled"]), self.ctx.params.log_every
        if every and n % every == 0:
            self.ctx.log.info(
                "%s: window %d, accuracy %.1f %% (last 50: %.1f %%), %d updates",
                self.rule,
                n,
                100 * s["accuracy"],
                100 * s["recent_accuracy"],
                s["updates"],
            )

    async def teardown(self) -> None:
        if self.adapter is not None:
            s = self.adapter.summary()
            self.ctx.log.info(
                "%s: %d windows, accuracy %.1f %%, %d updates, %.4g pJ/update",
                self.rule,
                s["labelled"],
                100 * s["accuracy"],
                s["updates"],
                s["energy_pj_per_update"],
            )


def _n_classes(ck: Checkpoint) -> int:
    """The model file's "n_classes" meta, else the width of its linear readout."""
    if "n_classes" in ck.meta:
        return int(ck.meta["n_classes"])
    readout = ck.model.get_submodule("readout")
    if not isinstance(readout, torch.nn.Linear):
        raise ModelFileError(f"no 'n_classes' meta and no linear readout ({type(readout).__name__})")
    return readout.out_features


class DfaAdapter(AdaptiveClassifier):
    """`adapt.dfa`: learns with Direct Feedback Alignment (all layers updated in parallel)."""

    rule = "dfa"


class BpAdapter(AdaptiveClassifier):
    """`adapt.bp`: learns with backpropagation through time over transposed crossbar reads."""

    rule = "bp"


class FrozenClassifier(AdaptiveClassifier):
    """`adapt.none`: the same classifier on the same hardware, never updated (the baseline)."""

    rule = "none"


class AdaptReport(Node):
    """Takes the `stats` of adapter nodes on inputs named after them (e.g. none, dfa, bp).

    Logs every `log_every` windows each one's accuracy over its last `smooth` windows. The PNG is
    redrawn in a worker thread while the run goes on (every `redraw_every` windows, and `quiet_s` after
    the last message), so it is current when the graph stops: teardown must finish within the
    runtime's stop grace, and one matplotlib redraw can take most of a second on a busy CPU. Teardown
    writes the cost table (markdown) and JSON summary, starts a last redraw if the data changed, and
    waits up to `teardown_wait_s` for it (0: the redraw finishes while the process exits).
    """

    dynamic_inputs = True

    class Params(NodeParams):
        png: str = "out/har_wearable/accuracy.png"
        table: str = "out/har_wearable/costs.md"
        json_path: str | None = "out/har_wearable/summary.json"
        smooth: int = Field(20, ge=1)
        log_every: int = Field(25, ge=0)
        redraw_every: int = Field(50, ge=0)
        quiet_s: float = Field(0.25, ge=0)
        teardown_wait_s: float = Field(0.0, ge=0)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.hits: dict[str, list[int]] = {}
        self.summaries: dict[str, dict[str, Any]] = {}
        self.n = self.drawn = 0
        self.plot = AccuracyPlot(ctx.params.smooth)  # import matplotlib and build the figure now
        self.render: asyncio.Future[Any] | None = None
        self.quiet: asyncio.Task[None] | None = None

    async def on_input(self, port: str, msg: Message) -> None:
        s = msg.payload
        if not isinstance(s, dict) or "correct" not in s:
            self.ctx.counter("ignored")
            return
        self.hits.setdefault(port, []).append(int(bool(s["correct"])))
        self.summaries[port] = {k: v for k, v in s.items() if isinstance(v, (int, float))}
        self.n += 1
        longest = max(len(h) for h in self.hits.values())
        p = self.ctx.params
        if p.log_every and len(self.hits[port]) == longest and longest % p.log_every == 0:
            parts = [
                f"{k} {100 * sum(h[-p.smooth :]) / len(h[-p.smooth :]):.0f} %" for k, h in self.hits.items()
            ]
            self.ctx.log.info("window %d accuracy (last %d): %s", longest, p.smooth, " | ".join(parts))
        if p.redraw_every and self.n % p.redraw_every == 0:
            self._redraw()
        if self.quiet is not None:
            self.quiet.cancel()
        self.quiet = asyncio.ensure_future(self._after_quiet())

    async def _after_quiet(self) -> None:
        await asyncio.sleep(self.ctx.params.quiet_s)
        self._redraw()

    def _redraw(self) -> None:
        """Start a PNG redraw in a thread (one at a time) with a snapshot of the data."""
        if self.render is not None and not self.render.done():
            return
        if not self.hits or self.drawn == self.n:
            return
        self.drawn = self.n
        snapshot = {k: list(v) for k, v in self.hits.items()}
        self.render = asyncio.ensure_future(asyncio.to_thread(self.plot.save, snapshot, self.ctx.params.png))

    async def teardown(self) -> None:
        if self.quiet is not None:
            self.quiet.cancel()
        if not self.hits:
            return
        p = self.ctx.params
        hits = {k: list(v) for k, v in self.hits.items()}
        table = cost_table(self.summaries, hits)
        Path(p.table).parent.mkdir(parents=True, exist_ok=True)
        Path(p.table).write_text(table)
        if p.json_path:
            Path(p.json_path).write_text(
                json.dumps(
                    {"summaries": self.summaries, "ratios": ratios(self.summaries, hits), "hits": hits},
                    indent=1,
                    default=float,
                )
            )
        self.ctx.log.info("cost per rule (also in %s):\n%s", p.table, table)
        t_end = time.monotonic() + p.teardown_wait_s
        while True:
            if self.drawn != self.n and (self.render is None or self.render.done()):
                self._redraw()
            left = t_end - time.monotonic()
            if left <= 0 or self.render is None or self.render.done():
                break
            await asyncio.wait({self.render}, timeout=left)
        done = self.drawn == self.n and self.render is not None and self.render.done()
        self.ctx.log.info("accuracy over time: %s%s", p.png, "" if done else " (still being drawn)")
