"""Watching a running graph: the run registry, `edgeloop top`, `edgeloop topic echo|hz`, a Prometheus endpoint."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import zmq

from .codec import EOS, decode
from .errors import CodecError, EdgeloopError, TransportError
from .graph import Graph
from .qos import LatencyReservoir
from .wiring import Wiring

__all__ = [
    "runs_dir",
    "write_run_file",
    "find_run",
    "TelemetryClient",
    "render_top",
    "echo",
    "hz",
    "start_metrics_server",
]


def runs_dir() -> Path:
    """Where running graphs announce themselves (per user, 0700)."""
    base = os.environ.get("EDGELOOP_RUNS_DIR") or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), f"edgeloop-runs-{os.getuid()}"
    )
    p = Path(base)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    return p


def write_run_file(graph: Graph, wiring: Wiring) -> Path:
    info = {
        "name": graph.spec.name,
        "pid": os.getpid(),
        "graph_file": graph.filename,
        "started": time.time(),
        "telemetry": wiring.telemetry,
        "tap": wiring.tap,
        "node_agent": {n.id: graph.agent_of(n.id) for n in graph.spec.nodes},
        "outputs": graph.outputs,
    }
    path = runs_dir() / f"{graph.spec.name}-{os.getpid()}.json"
    path.write_text(json.dumps(info))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_run(name: str | None = None) -> dict[str, Any]:
    """The newest live run (with graph `name`, if given); stale files of dead runs are removed."""
    runs = []
    for f in runs_dir().glob("*.json"):
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(int(info.get("pid", 0))):
            f.unlink(missing_ok=True)
            continue
        if name is None or info.get("name") == name:
            runs.append(info)
    if not runs:
        which = f"named '{name}' " if name else ""
        raise EdgeloopError(
            f"no running graph {which}found in {runs_dir()}: start one with `edgeloop run GRAPH.yaml`"
        )
    return max(runs, key=lambda r: r["started"])


class TelemetryClient:
    """Subscribes to a run's merged statistics (published by the launcher about 4 times a second)."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"stats")
        self.sock.connect(run["telemetry"])

    def next(self, timeout_s: float = 5.0) -> dict[str, Any]:
        if not self.sock.poll(int(timeout_s * 1000)):
            raise EdgeloopError(f"no statistics from the run within {timeout_s:.0f} s (has it stopped?)")
        _, raw = self.sock.recv_multipart()
        view: dict[str, Any] = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        return view

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def render_top(view: dict[str, Any], prev: dict[str, Any] | None = None, dt: float = 1.0) -> Any:
    """A rich renderable: nodes (agent, state, CPU, RSS, restarts) and edges (rate, latency, queue, drops)."""
    from rich.console import Group
    from rich.table import Table

    nodes = Table(title=f"edgeloop top — {view.get('graph', '')}", expand=True)
    for c in ("node", "agent", "state", "CPU %", "RSS MiB", "restarts", "busy %"):
        nodes.add_column(c, justify="left" if c in ("node", "agent", "state") else "right")
    agents = view.get("agents", {})
    pagents = (prev or {}).get("agents", {})
    for n, v in sorted(view.get("nodes", {}).items()):
        a = agents.get(v["agent"], {})
        pa = pagents.get(v["agent"], {})
        cpu = 100.0 * (a.get("cpu_s", 0) - pa.get("cpu_s", a.get("cpu_s", 0))) / dt if pa else float("nan")
        pbusy = (prev or {}).get("nodes", {}).get(n, {}).get("busy_s")
        busy = 100.0 * (v.get("busy_s", 0) - pbusy) / dt if pbusy is not None else float("nan")
        nodes.add_row(
            n,
            v["agent"],
            v["state"],
            f"{cpu:.0f}",
            f"{a.get('rss', 0) / 2**20:.0f}",
            str(view.get("restarts", {}).get(v["agent"], 0) + v.get("restarts", 0)),
            f"{busy:.0f}",
        )
    edges = Table(expand=True)
    for c in ("edge", "rate Hz", "p50 µs", "p99 µs", "queue", "dropped"):
        edges.add_column(c, justify="left" if c == "edge" else "right")
    pedges = (prev or {}).get("edges", {})
    for name, e in sorted(view.get("edges", {}).items()):
        pe = pedges.get(name)
        rate = (e["received"] - pe["received"]) / dt if pe else float("nan")
        edges.add_row(
            name,
            f"{rate:.1f}",
            f"{e['latency']['p50_us']:.0f}",
            f"{e['latency']['p99_us']:.0f}",
            str(e["queue_depth"]),
            str(e["dropped"]),
        )
    parts: list[Any] = [nodes, edges]
    if view.get("paths"):
        paths = Table(title="sensor → action", expand=True)
        for c in ("path", "count", "p50 µs", "p99 µs", "max µs", "late", "too late"):
            paths.add_column(c, justify="left" if c == "path" else "right")
        for k, p in sorted(view["paths"].items()):
            paths.add_row(
                k,
                str(p["count"]),
                f"{p['p50_us']:.0f}",
                f"{p['p99_us']:.0f}",
                f"{p['max_us']:.0f}",
                str(p["late"]),
                str(p["too_late"]),
            )
        parts.append(paths)
    return Group(*parts)


def _tap_socket(run: dict[str, Any], topic: str) -> tuple[zmq.Context[Any], zmq.Socket[Any]]:
    node, _, port = topic.partition("/")
    agent = run["node_agent"].get(node)
    if agent is None or port not in run["outputs"].get(node, []):
        outs = [f"{n}/{p}" for n, ps in run["outputs"].items() for p in ps]
        raise EdgeloopError(f"'{topic}' is not an output of the running graph (outputs: {', '.join(outs)})")
    endpoint = run["tap"].get(agent)
    if endpoint is None:
        raise EdgeloopError(
            f"'{topic}' is emitted by agent '{agent}' on another host: `topic echo/hz` reach "
            "only agents on the launcher's host (record it with `edgeloop record` instead)"
        )
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    sock.connect(endpoint)
    return ctx, sock


def echo(
    run: dict[str, Any], topic: str, *, count: int | None = None, timeout_s: float = 10.0
) -> Iterator[Any]:
    """Decoded messages of `topic` as they are emitted (malformed ones skipped)."""
    ctx, sock = _tap_socket(run, topic)
    try:
        n = 0
        while count is None or n < count:
            if not sock.poll(int(timeout_s * 1000)):
                raise EdgeloopError(f"no message on '{topic}' within {timeout_s:.0f} s")
            frames = sock.recv_multipart(copy=False)
            try:
                kind, msg, _ = decode(frames)
            except CodecError:
                continue
            if kind == EOS or msg.topic != topic:
                continue
            n += 1
            yield msg
    finally:
        sock.close()
        ctx.term()


def hz(
    run: dict[str, Any], topic: str, *, window_s: float = 2.0, timeout_s: float = 10.0
) -> dict[str, float]:
    """Rate, period jitter and sequence gaps of `topic` over `window_s`."""
    times: list[int] = []
    seqs: list[int] = []
    t_end = time.monotonic() + window_s
    for msg in echo(run, topic, timeout_s=timeout_s):
        times.append(time.time_ns())
        seqs.append(msg.seq)
        if time.monotonic() >= t_end and len(times) >= 2:
            break
    import numpy as np

    dt = np.diff(np.asarray(times, dtype=np.float64)) / 1e9
    gaps = int(sum(max(0, b - a - 1) for a, b in zip(seqs, seqs[1:], strict=False)))
    return {
        "rate_hz": float(1.0 / dt.mean()) if dt.size else float("nan"),
        "n": len(times),
        "period_std_ms": float(dt.std() * 1000) if dt.size else float("nan"),
        "gaps": gaps,
    }


def start_metrics_server(port: int, view: Callable[[], dict[str, Any]]) -> Any:
    """Serve Prometheus metrics (counters, gauges, latency histograms) on 127.0.0.1:`port`."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    class _Collector:
        def collect(self) -> Iterator[Any]:
            v = view()
            recv = CounterMetricFamily(
                "edgeloop_edge_received", "messages delivered to a node", labels=["edge"]
            )
            drop = CounterMetricFamily(
                "edgeloop_edge_dropped", "messages dropped (queue, gaps, failed node)", labels=["edge"]
            )
            depth = GaugeMetricFamily(
                "edgeloop_edge_queue_depth", "messages waiting in the input queue", labels=["edge"]
            )
            hist = HistogramMetricFamily(
                "edgeloop_edge_latency_seconds", "emit to on_input latency", labels=["edge"]
            )
            for name, e in v.get("edges", {}).items():
                recv.add_metric([name], e["received"])
                drop.add_metric([name], e["dropped"])
                depth.add_metric([name], e["queue_depth"])
                counts = e.get("hist", {}).get("counts")
                if counts:
                    cum, buckets = 0, []
                    for bound, c in zip([*LatencyReservoir.BOUNDS_NS, None], counts, strict=True):
                        cum += c
                        buckets.append(("+Inf" if bound is None else str(bound / 1e9), cum))
                    hist.add_metric([name], buckets, sum_value=e["hist"]["sum_us"] / 1e6)
            rss = GaugeMetricFamily(
                "edgeloop_agent_rss_bytes", "resident memory of an agent", labels=["agent"]
            )
            for a, s in v.get("agents", {}).items():
                rss.add_metric([a], s.get("rss", 0))
            yield from (recv, drop, depth, hist, rss)

    registry = CollectorRegistry()
    registry.register(_Collector())
    try:
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:  # EADDRINUSE, or a privileged port
        raise TransportError(
            f"--metrics-port {port}: cannot serve metrics on 127.0.0.1:{port} ({exc.strerror or exc}); "
            "choose a free port, or stop what listens there"
        ) from None
    return server
