"""The `edgeloop` verbs on running graphs: `list`, `top`, `topic echo|hz`, and which run they attach to."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["register", "attach", "describe_run", "runs_text"]


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _owner(run: dict[str, Any]) -> str:
    import os
    import pwd

    uid = int(run.get("uid", os.getuid()))
    if uid == os.getuid():
        return ""
    try:
        return f", user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f", uid {uid}"


def describe_run(run: dict[str, Any], n_running: int) -> str:
    """`attached to run NAME-PID (graph FILE, pid N, started …)`, and how to pick another when there are more."""
    from .observe import run_id

    text = (
        f"attached to run {run_id(run)} (graph {run.get('graph_file')}, pid {run['pid']}, "
        f"started {_when(float(run['started']))}{_owner(run)})"
    )
    if n_running > 1:
        text += f"; {n_running} runs running, pick one with --run NAME|PID (see `edgeloop list`)"
    return text


def attach(selector: str | None) -> dict[str, Any]:
    """The run `selector` names (the newest if None), said on stderr so that stdout stays the data."""
    from .observe import find_run, list_runs

    run = find_run(selector)
    print(describe_run(run, len(list_runs())), file=sys.stderr, flush=True)
    return run


def runs_text(runs: list[dict[str, Any]]) -> str:
    """`edgeloop list`: one line per running graph (run, graph file, pid, start, agents, endpoints)."""
    from .observe import run_id

    if not runs:
        return "no running graphs"
    lines = []
    for r in runs:
        agents = sorted(set(r.get("node_agent", {}).values()))
        taps = ", ".join(f"{a}={e}" for a, e in sorted(r.get("tap", {}).items()))
        lines.append(
            f"{run_id(r)}  graph {r.get('graph_file')}  pid {r['pid']}{_owner(r)}  started "
            f"{_when(float(r['started']))}  agents {', '.join(agents) or '-'}  "
            f"stats {r.get('telemetry')}  metrics {r.get('metrics') or '-'}  taps {taps or '-'}"
        )
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    from .observe import list_runs

    print(runs_text(list_runs()))
    return 0


def _cmd_top(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from .observe import TelemetryClient, render_top

    client = TelemetryClient(attach(args.run or args.name))
    try:
        prev, t_prev = client.next(), time.monotonic()
        if args.once:
            view = client.next()
            Console(width=160).print(render_top(view, prev, time.monotonic() - t_prev))
            return 0
        with Live(render_top(prev), refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(args.interval)
                view = client.next()
                now = time.monotonic()
                live.update(render_top(view, prev, now - t_prev))
                prev, t_prev = view, now
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def _cmd_topic(args: argparse.Namespace) -> int:
    from .observe import echo, hz

    run = attach(args.run or args.run_name)
    if args.topic_cmd == "hz":
        r = hz(run, args.topic, window_s=args.window, timeout_s=args.timeout)
        print(
            f"{args.topic}: {r['rate_hz']:.2f} Hz over {r['n']} messages, period std {r['period_std_ms']:.3f} ms, "
            f"{r['gaps']} lost (sequence gaps)"
        )
        return 0
    try:
        for msg in echo(run, args.topic, count=args.count, timeout_s=args.timeout):
            print(
                f"seq={msg.seq} t_sense={msg.t_sense_ns} origin={msg.origin} payload={_summarise(msg.payload)}",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    return 0


def _summarise(payload: Any) -> str:
    import numpy as np

    if isinstance(payload, np.ndarray):
        head = np.array2string(payload.ravel()[:4], precision=4, separator=", ")
        return f"array(dtype={payload.dtype}, shape={list(payload.shape)}, head={head})"
    if isinstance(payload, dict):
        return "{" + ", ".join(f"{k}: {_summarise(v)}" for k, v in payload.items()) + "}"
    if isinstance(payload, list) and len(payload) > 8:
        return f"[{', '.join(map(_summarise, payload[:8]))}, … ({len(payload)} items)]"
    text = repr(payload)
    return text if len(text) <= 200 else text[:197] + "..."


_RUN_HELP = "the run: a graph name, a launcher pid or NAME-PID (default: the newest; see `edgeloop list`)"


def register(sub: Any) -> None:
    """Add `list`, `top` and `topic` to the `edgeloop` subparsers."""
    sp = sub.add_parser("list", help="the running graphs: run, graph file, pid, start, agents, endpoints")
    sp.set_defaults(func=_cmd_list)
    sp = sub.add_parser("top", help="live view of a running graph: nodes, edges, sensor→action latency")
    sp.add_argument("name", nargs="?", help="graph name (default: the newest run)")
    sp.add_argument("--run", metavar="NAME|PID", help=_RUN_HELP)
    sp.add_argument("--once", action="store_true", help="print one snapshot and exit")
    sp.add_argument("--interval", type=float, default=1.0, metavar="S")
    sp.set_defaults(func=_cmd_top)
    sp = sub.add_parser("topic", help="look at one output of a running graph")
    tsub = sp.add_subparsers(dest="topic_cmd", metavar="ACTION", required=True)
    for action, help_ in (("echo", "print messages as they are emitted"), ("hz", "measure the rate")):
        tp = tsub.add_parser(action, help=help_)
        tp.add_argument("topic", metavar="NODE/PORT")
        tp.add_argument("--run", metavar="NAME|PID", help=_RUN_HELP)
        tp.add_argument("--graph", dest="run_name", help="graph name (as --run NAME)")
        tp.add_argument("-n", "--count", type=int, default=None, help="stop after N messages (echo)")
        tp.add_argument("--window", type=float, default=2.0, metavar="S", help="measuring window (hz)")
        tp.add_argument("--timeout", type=float, default=10.0, metavar="S")
        tp.set_defaults(func=_cmd_topic)
