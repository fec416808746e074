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
from .stats import format_latency_us
from .wiring import Wiring

__all__ = [
    "runs_dir",
    "write_run_file",
    "list_runs",
    "run_id",
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


def write_run_file(graph: Graph, wiring: Wiring, *, metrics_port: int | None = None) -> Path:
    info = {
        "name": graph.spec.name,
        "pid": os.getpid(),
        "graph_file": graph.filename,
        "started": time.time(),
        "telemetry": wiring.telemetry,
        "tap": wiring.tap,
        "metrics": f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None,
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


def _started_after(pid: int, t: float) -> bool:
    """Whether process `pid` started after time `t` (its number was reused); False where /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        btime = next(
            int(ln.split()[1])
            for ln in Path("/proc/stat").read_text().splitlines()
            if ln.startswith("btime ")
        )
        return btime + ticks / os.sysconf("SC_CLK_TCK") > t + 2.0  # /proc/stat's btime is whole seconds
    except (OSError, ValueError, IndexError, StopIteration):
        return False


def list_runs() -> list[dict[str, Any]]:
    """The runs whose launcher is alive, oldest first, each with its `run_file` and owner `uid`. The file
    of a launcher that is gone (no such pid, or the pid now names a younger process) is removed."""
    runs = []
    for f in runs_dir().glob("*.json"):
        try:
            info = json.loads(f.read_text())
            pid, started, uid = int(info["pid"]), float(info["started"]), f.stat().st_uid
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours to judge: ignored, kept
        if not _alive(pid) or _started_after(pid, started):
            try:
                f.unlink(missing_ok=True)
            except OSError:
                pass  # another user's file in a shared directory
            continue
        runs.append({**info, "run_file": str(f), "uid": uid})
    return sorted(runs, key=lambda r: float(r["started"]))


def run_id(run: dict[str, Any]) -> str:
    """`NAME-PID`, the stem of the run file: unique among running graphs."""
    return f"{run['name']}-{run['pid']}"


def find_run(selector: str | None = None) -> dict[str, Any]:
    """The newest live run that `selector` names (a graph name, a launcher pid or `NAME-PID`; any if None)."""
    running = list_runs()
    runs = [r for r in running if selector is None or selector in (r["name"], str(r["pid"]), run_id(r))]
    if not runs:
        which = f"'{selector}' " if selector else ""
        known = f" (running: {', '.join(run_id(r) for r in running)})" if running else ""
        raise EdgeloopError(
            f"no running graph {which}found in {runs_dir()}{known}: start one with "
            "`edgeloop run GRAPH.yaml`, or pick a running one with --run NAME|PID (see `edgeloop list`)"
        )
    return runs[-1]


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
    for c in ("edge", "rate Hz", "latency p50", "p99", "queue", "dropped"):
        edges.add_column(c, justify="left" if c == "edge" else "right")
    pedges = (prev or {}).get("edges", {})
    for name, e in sorted(view.get("edges", {}).items()):
        pe = pedges.get(name)
        rate = (e["received"] - pe["received"]) / dt if pe else float("nan")
        edges.add_row(
            name,
            f"{rate:.1f}",
            format_latency_us(e["latency"]["p50_us"]),
            format_latency_us(e["latency"]["p99_us"]),
            str(e["queue_depth"]),
            str(e["dropped"]),
        )
    parts: list[Any] = [nodes, edges]
    if view.get("paths"):
        paths = Table(title="sensor → action", expand=True)
        for c in ("path", "count", "latency p50", "p99", "max", "late", "too late"):
            paths.add_column(c, justify="left" if c == "path" else "right")
        for k, p in sorted(view["paths"].items()):
            paths.add_row(
                k,
                str(p["count"]),
                format_latency_us(p["p50_us"]),
                format_latency_us(p["p99_us"]),
                format_latency_us(p["max_us"]),
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


def _path_metrics(paths: dict[str, Any]) -> list[Any]:
    """Per sensor→action path (`origin → node/input`): messages, latency p50/p99/max, and where the graph
    has a deadline, late and too-late messages and the deadline."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    count = CounterMetricFamily(
        "edgeloop_path_messages", "messages that reached the path's end", labels=["path"]
    )
    lat = GaugeMetricFamily(
        "edgeloop_path_latency_seconds",
        "sensor to action latency (quantile 1 is the maximum)",
        labels=["path", "quantile"],
    )
    late = CounterMetricFamily("edgeloop_path_late", "messages later than deadline_ms", labels=["path"])
    too = CounterMetricFamily("edgeloop_path_too_late", "messages later than too_late_ms", labels=["path"])
    dl = GaugeMetricFamily("edgeloop_path_deadline_seconds", "the graph's deadline_ms", labels=["path"])
    for k, p in paths.items():
        count.add_metric([k], p["count"])
        for q, key in (("0.5", "p50_us"), ("0.99", "p99_us"), ("1", "max_us")):
            if p[key] == p[key]:  # NaN (no sample yet, or clock: sim) is left out
                lat.add_metric([k, q], p[key] / 1e6)
        if p.get("deadline_ms") is not None:
            late.add_metric([k], p["late"])
            too.add_metric([k], p["too_late"])
            dl.add_metric([k], p["deadline_ms"] / 1e3)
    return [count, lat, late, too, dl]


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
            yield from _path_metrics(v.get("paths", {}))

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
