"""What a launcher tells tools while it runs: merged statistics on a PUB (`edgeloop top`), the run file,
Prometheus metrics, and the per-agent summary it publishes to the fleet."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from .graph import Graph
from .observe import start_metrics_server, write_run_file
from .stats import merge_snapshots
from .supervision import AgentProc, AgentState, Failure
from .wiring import Wiring

__all__ = ["StatsPublisher", "fleet_summary", "live_top"]

_PUBLISH_S = 0.25  # the PUB's fastest pace (workers send every 0.5 s each)
_FAILURES_SHOWN = 20


class StatsPublisher:
    """Keeps every agent's latest snapshot and the merged view; `open()` binds the PUB, writes the run
    file and starts the Prometheus exporter (`metrics_port`); `close()` undoes all three.
    `on_stats(view)` sees every new merged view."""

    def __init__(self, graph: Graph, *, metrics_port: int | None = None) -> None:
        self.graph = graph
        self.metrics_port = metrics_port
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.on_stats: Callable[[dict[str, Any]], None] | None = None
        self.run_file: Path | None = None
        self._pub: zmq.asyncio.Socket | None = None
        self._exporter: Any = None
        self._last_publish = 0.0

    def open(self, zctx: zmq.asyncio.Context, wiring: Wiring) -> None:
        self._pub = zctx.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.setsockopt(zmq.SNDHWM, 10)
        self._pub.bind(wiring.telemetry)
        self.run_file = write_run_file(self.graph, _tool_wiring(wiring), metrics_port=self.metrics_port)
        if self.metrics_port:
            self._exporter = start_metrics_server(self.metrics_port, self.view)

    def view(self) -> dict[str, Any]:
        return merge_snapshots(self.snapshots)

    async def update(
        self, agent: str, snapshot: dict[str, Any], restarts: dict[str, int], failures: list[Failure]
    ) -> None:
        """A worker's new snapshot: tell `on_stats`, and the PUB at most every 0.25 s."""
        self.snapshots[agent] = snapshot
        view = self.view()
        if self.on_stats is not None:
            self.on_stats(view)
        now = time.monotonic()
        if self._pub is not None and now - self._last_publish >= _PUBLISH_S:
            self._last_publish = now
            view["graph"] = self.graph.spec.name
            view["restarts"] = restarts
            view["failures"] = [f.message for f in failures[-_FAILURES_SHOWN:]]
            await self._pub.send_multipart([b"stats", msgpack.packb(view, default=str)])

    def close(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()
            self._exporter = None
        if self.run_file is not None:
            self.run_file.unlink(missing_ok=True)
        if self._pub is not None:
            self._pub.close(linger=0)
            self._pub = None


def _tool_wiring(wiring: Wiring) -> Wiring:
    """What tools on this host may use: remote agents' taps are CURVE servers elsewhere, so they are left out."""
    w = Wiring.from_dict(wiring.to_dict())
    for name in w.remote:
        w.tap.pop(name, None)
    return w


def fleet_summary(
    graph_name: str,
    agents: Mapping[str, AgentProc],
    snapshots: Mapping[str, dict[str, Any]],
    prev: dict[str, tuple[int, float]],
    n_failures: int,
) -> dict[str, Any]:
    """Per-agent rates, drops and health for the broker (~2 Hz); counts only, no NaN (JSON).

    `prev` keeps (received, time) per agent between calls, for the rates."""
    now = time.monotonic()
    out: dict[str, Any] = {}
    for a in agents.values():
        snap = snapshots.get(a.name, {})
        edges = snap.get("edges", {}).values()
        received = int(sum(e.get("received", 0) for e in edges))
        last = prev.get(a.name)
        rate = (received - last[0]) / (now - last[1]) if last is not None and now > last[1] else 0.0
        prev[a.name] = (received, now)
        failed = sorted(n for n, v in snap.get("nodes", {}).items() if v.get("state") == "failed")
        out[a.name] = {
            "state": a.state.value,
            "remote": a.remote,
            "incarnation": a.incarnation,
            "restarts": a.restarts,
            "received": received,
            "dropped": int(sum(e.get("dropped", 0) for e in edges)),
            "rate_hz": round(rate, 3),
            "cpu_s": round(float(snap.get("cpu_s", 0.0)), 3),
            "rss": int(snap.get("rss", 0)),
            "failed_nodes": failed,
            "healthy": a.state in (AgentState.RUNNING, AgentState.DONE) and not failed,
        }
    return {"graph": graph_name, "agents": out, "failures": n_failures}


def live_top(graph_name: str) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """`edgeloop run --top`: the same live view as `edgeloop top`, in this terminal, as the launcher's
    `(on_stats, on_finish)`."""
    from rich.live import Live

    from .observe import render_top

    live = Live(refresh_per_second=4)
    state: dict[str, Any] = {"prev": None, "t": time.monotonic(), "started": False}

    def on_stats(view: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - state["t"] < 1.0 and state["prev"] is not None:
            return
        if not state["started"]:
            live.start()
            state["started"] = True
        live.update(render_top({**view, "graph": graph_name}, state["prev"], now - state["t"]))
        state["prev"], state["t"] = view, now

    def on_finish() -> None:
        if state["started"]:
            live.stop()

    return on_stats, on_finish
