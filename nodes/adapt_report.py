"""`adapt.report`: live accuracy of several adapters, then a PNG of accuracy over time and a cost table."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from models.adapt.report import AccuracyPlot, cost_table, ratios
from runtime.message import Message
from runtime.node import Context, Node, Params

__all__ = ["AdaptReport"]


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

    class Params(Params):
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
