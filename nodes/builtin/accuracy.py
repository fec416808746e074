"""`eval.accuracy`: a sink that scores a classifier's predictions against the sensor's labels, live.

Predictions and labels are matched by sensing time (a prediction carries the `t_sense` of the sample it
classified, the label that of the same sensor reading), so the sink works across processes and lossy
edges. With a `cost` input (`snn.classifier`'s per-inference CostReport) it also averages the chip's
energy and latency per inference. Results are node counters (run summary, `--stats-json`, Prometheus)
and a line logged at the end.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["AccuracySink"]

_PENDING = 64  # unmatched predictions / labels kept per side (a partner that never comes is forgotten)


class AccuracySink(Node):
    """`pred` ({class, label, confidence} from `snn.classifier` / `adapt.*`) and `label` (a class index, or
    a class name, −1 = unlabelled), paired by `t_sense`; optional `cost` (a CostReport dict).

    Counters: `scored`, `correct`, `unlabelled`, `accuracy` (correct / scored), `inferences_costed`,
    `energy_nj_per_inference` and `latency_us_per_inference` (means over `cost` messages). Output
    `accuracy`: the running accuracy after each scored prediction. Logs every `log_every` scores.
    """

    inputs = ("pred", "label", "cost")
    outputs = ("accuracy",)

    class Params(NodeParams):
        log_every: int = Field(0, ge=0, description="log the running accuracy every N scores (0: at the end)")

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.preds: dict[int, dict[str, Any]] = {}
        self.labels: dict[int, int | str] = {}
        self.scored = self.correct = self.costed = 0
        self.energy_pj = self.latency_ns = 0.0
        self.backend = ""

    async def on_input(self, port: str, msg: Message) -> None:
        t = msg.t_sense_ns
        if port == "cost":
            self._add_cost(msg.payload)
            return
        if port == "pred":
            if not isinstance(msg.payload, dict) or "class" not in msg.payload:
                self.ctx.counter("ignored")
                return
            self.preds[t] = msg.payload
        else:
            label = msg.payload
            self.labels[t] = label if isinstance(label, str) else int(label)
        if t in self.preds and t in self.labels:
            await self._score(self.preds.pop(t), self.labels.pop(t), msg)
        for pending in (self.preds, self.labels):
            while len(pending) > _PENDING:
                pending.pop(next(iter(pending)))

    async def _score(self, pred: dict[str, Any], label: int | str, msg: Message) -> None:
        if isinstance(label, int) and label < 0:
            self.ctx.counter("unlabelled")
            return
        hit = pred.get("label") == label if isinstance(label, str) else int(pred["class"]) == label
        self.scored += 1
        self.correct += int(hit)
        self.ctx.counter("scored")
        self.ctx.counter("correct", float(hit))
        self.ctx.gauge("accuracy", self.correct / self.scored)
        await self.ctx.emit("accuracy", self.correct / self.scored, t_sense=msg)
        every = self.ctx.params.log_every
        if every and self.scored % every == 0:
            self.ctx.log.info("%s", self.report())

    def _add_cost(self, cost: Any) -> None:
        total = cost.get("total") if isinstance(cost, dict) else None
        if not isinstance(total, dict):
            self.ctx.counter("ignored")
            return
        self.costed += 1
        self.energy_pj += float(total.get("energy_pj") or 0.0)
        self.latency_ns += float(total.get("latency_ns") or 0.0)
        self.backend = str(cost.get("backend") or self.backend)
        self.ctx.counter("inferences_costed")
        self.ctx.gauge("energy_nj_per_inference", self.energy_pj / self.costed / 1e3)
        self.ctx.gauge("latency_us_per_inference", self.latency_ns / self.costed / 1e3)

    def report(self) -> str:
        """One line: accuracy so far and, when costs came in, the chip's mean energy/latency per inference."""
        acc = (
            f"accuracy {100 * self.correct / self.scored:.1f} % ({self.correct}/{self.scored})"
            if self.scored
            else "accuracy: nothing scored yet"
        )
        if not self.costed:
            return acc
        if self.energy_pj == 0 and self.latency_ns == 0:
            return f"{acc}; backend '{self.backend or '?'}' has no cost model"
        return (
            f"{acc}; chip '{self.backend or '?'}': {self.energy_pj / self.costed / 1e3:.4g} nJ and "
            f"{self.latency_ns / self.costed / 1e3:.4g} µs per inference ({self.costed} inferences)"
        )

    async def teardown(self) -> None:
        self.ctx.log.info("%s", self.report())
