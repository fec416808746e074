"""Summaries of edge statistics: rates, latency percentiles, drops; and the exit summary table."""

from __future__ import annotations

from typing import Any

from .qos import EdgeStats, LatencyReservoir

__all__ = ["edge_summary", "merge_snapshots", "summary_rows", "print_summary", "format_latency_us"]


def _pcts(r: LatencyReservoir) -> dict[str, float]:
    p50, p99, top = r.percentiles_us()
    return {"p50_us": p50, "p99_us": p99, "max_us": top}


def edge_summary(st: EdgeStats) -> dict[str, Any]:
    return {
        "received": st.received,
        "dropped": st.dropped,
        "dropped_queue": st.dropped_queue,
        "dropped_gap": st.dropped_gap,
        "dropped_failed": st.dropped_failed,
        "queue_depth": st.queue_depth,
        "closed": st.closed,
        "latency": _pcts(st.latency),
        "hist": {"counts": st.latency.buckets, "sum_us": st.latency.sum_ns / 1000.0},
        "sense_latency": _pcts(st.sense_latency),
    }


def merge_snapshots(snaps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Combine the latest snapshot of every agent into one view: edges, outputs, nodes, agents."""
    edges: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for agent, s in snaps.items():
        edges.update(s.get("edges", {}))
        paths.update(s.get("paths", {}))
        outputs.update(s.get("outputs", {}))
        for n, v in s.get("nodes", {}).items():
            nodes[n] = {**v, "agent": agent}
    return {"edges": edges, "outputs": outputs, "nodes": nodes, "paths": paths, "agents": snaps}


def summary_rows(view: dict[str, Any], duration_s: float) -> list[dict[str, Any]]:
    rows = []
    for name, e in sorted(view["edges"].items()):
        src = name.split(" -> ")[0]
        sent = view["outputs"].get(src, {}).get("sent")
        rows.append(
            {
                "edge": name,
                "sent": sent,
                "received": e["received"],
                "dropped": e["dropped"],
                "rate_hz": e["received"] / duration_s if duration_s > 0 else float("nan"),
                "p50_us": e["latency"]["p50_us"],
                "p99_us": e["latency"]["p99_us"],
                "e2e_p99_us": e["sense_latency"]["p99_us"],
            }
        )
    return rows


def print_summary(view: dict[str, Any], duration_s: float, *, title: str = "edgeloop run summary") -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{title} ({duration_s:.2f} s)")
    for col in ("edge", "sent", "received", "dropped", "rate Hz", "latency p50", "p99", "sense→here p99"):
        t.add_column(col, justify="left" if col == "edge" else "right")
    f = format_latency_us
    for r in summary_rows(view, duration_s):
        rate = r["rate_hz"]
        t.add_row(
            r["edge"],
            "-" if r["sent"] is None else f"{r['sent']:,}",
            f"{r['received']:,}",
            f"{r['dropped']:,}",
            "-" if rate != rate else (f"{rate:,.0f}" if abs(rate) >= 100 else f"{rate:.1f}"),
            f(r["p50_us"]),
            f(r["p99_us"]),
            f(r["e2e_p99_us"]),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(t)
    if view.get("paths"):
        pt = Table(title="sensor → action latency")
        for col in ("path", "count", "latency p50", "p99", "max", "late", "too late"):
            pt.add_column(col, justify="left" if col == "path" else "right")
        for k, p in sorted(view["paths"].items()):
            dl = p.get("deadline_ms")
            pt.add_row(
                k,
                f"{p['count']:,}",
                f(p["p50_us"]),
                f(p["p99_us"]),
                f(p["max_us"]),
                "-" if dl is None else f"{p['late']:,}",
                "-" if dl is None else f"{p['too_late']:,}",
            )
        console.print(pt)
    metrics = {n: v["counters"] for n, v in sorted(view["nodes"].items()) if v.get("counters")}
    if metrics:
        mt = Table(title="node metrics")
        mt.add_column("node", justify="left")
        mt.add_column("metrics", justify="left")
        for n, counters in metrics.items():
            mt.add_row(n, ", ".join(f"{k} {_metric(v)}" for k, v in sorted(counters.items())))
        console.print(mt)
    bad = {n: v for n, v in view["nodes"].items() if v.get("failures") or v.get("restarts")}
    for n, v in bad.items():
        console.print(
            f"node [bold]{n}[/] ({v['agent']}): state {v['state']}, failures {v['failures']}, "
            f"restarts {v['restarts']} {v.get('error', '')}"
        )
    mal = sum(a.get("malformed", 0) for a in view["agents"].values())
    if mal:
        console.print(f"malformed messages dropped: {mal}")


def _metric(v: Any) -> str:
    """A node metric as a reader wants it: integers with separators, fractions with 3 significant digits."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.3g}"


def format_latency_us(us: float | None) -> str:
    """A latency in µs with the unit that suits it: `812 µs`, `1.25 ms`, `39.2 s`; `-` for none or NaN."""
    if us is None or us != us:
        return "-"
    unit, x = "s", us / 1e6
    if abs(us) < 999.5:  # what would round to 1000 takes the next unit
        unit, x = "µs", us
    elif abs(us) < 999_500:
        unit, x = "ms", us / 1e3
    digits = 0 if abs(x) >= 99.95 else (1 if abs(x) >= 9.995 else 2)
    return f"{x:.{digits}f} {unit}"
