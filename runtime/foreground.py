"""Run a graph in the foreground, as `edgeloop run` does: Ctrl-C or SIGTERM stops it, a second Ctrl-C kills."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from .graph import Graph, load_graph
from .launcher import Launcher, RunResult
from .node import BackendSetting
from .stats import print_summary
from .telemetry import live_top

__all__ = ["run_graph", "report_run"]


def run_graph(
    path: str | Path,
    *,
    duration_s: float | None = None,
    overrides: list[str] | None = None,
    transport: str = "auto",
    graph: Graph | None = None,
    top: bool = False,
    metrics_port: int | None = None,
    broker_url: str | None = None,
    keys_dir: str | Path | None = None,
    advertise: str | None = None,
    fleet: str = "default",
    broker_port: int | None = None,
    restore_signals: bool = True,
    backend: BackendSetting | None = None,
) -> RunResult:
    """Run a graph file until it finishes, `duration_s` passes, or Ctrl-C / SIGTERM (a second Ctrl-C kills).

    `backend` overrides the hardware backend of every node (`edgeloop run --backend`)."""
    graph = graph or load_graph(path, overrides)

    holder: dict[str, Any] = {}

    def on_signal() -> None:
        launcher: Launcher | None = holder.get("launcher")
        if launcher is None:
            return
        if launcher.stop_requested.is_set():  # a second Ctrl-C: kill now
            launcher.kill_now()
        launcher.stop_requested.set()

    def handler(signum: int, frame: Any) -> None:
        loop = holder.get("loop")
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(on_signal)

    async def main() -> RunResult:
        launcher = Launcher(
            graph,
            overrides=overrides,
            transport=transport,
            metrics_port=metrics_port,
            broker_url=broker_url,
            keys_dir=keys_dir,
            advertise=advertise,
            fleet=fleet,
            broker_port=broker_port,
            backend=backend,
        )
        holder["launcher"], holder["loop"] = launcher, asyncio.get_running_loop()
        if top:
            launcher.on_stats, launcher.on_finish = live_top(graph.spec.name)
        return await launcher.run(duration_s)

    # Plain signal handlers, installed before the loop and kept until the result is back, so a Ctrl-C
    # at any moment means "stop" (then "kill"), never a KeyboardInterrupt that loses the summary.
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return asyncio.run(main())
    finally:
        # The handler left in place (restore_signals=False) does nothing once the loop is closed.
        if restore_signals:
            for sig, h in previous.items():
                signal.signal(sig, h)


def report_run(
    result: RunResult, *, title: str = "edgeloop run summary", stats_json: str | None = None
) -> None:
    """What a finished run tells its user: the summary table, each failure on stderr, and (if asked) the
    whole result as JSON for scripts."""
    print_summary(result.view, result.duration_s, title=title)
    for f in result.failures:
        print(f"failure: {f}", file=sys.stderr)
    if stats_json:
        record = {
            "exit_code": result.exit_code,
            "duration_s": result.duration_s,
            "view": result.view,
            "failures": result.failures,
            "restarts": result.restarts,
        }
        with open(stats_json, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, default=str)
