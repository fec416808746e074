"""The `record`, `replay` and `info` subcommands: MCAP recordings of runs, and runs fed from them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import GraphError, RecordingError
from ..graph import Graph, load_graph
from .graph import add_recorder, graph_metadata, recordable_topics, replace_sources, select_topics
from .info import RecordingInfo, read_overview, summarize
from .writer import COMPRESSIONS

__all__ = ["register"]


def _run_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter (repeatable; value parsed as YAML)",
    )
    sp.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    sp.add_argument(
        "--transport",
        choices=("auto", "tcp"),
        default="auto",
        help="auto: ipc on one host, tcp across hosts; tcp: force tcp on loopback",
    )
    sp.add_argument(
        "--stats-json",
        metavar="PATH",
        help="write the final statistics as JSON (missing folders are created)",
    )
    sp.add_argument("--force", action="store_true", help="overwrite an existing output recording")


def _recording_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--lossy",
        action="store_true",
        help="drop_oldest into the recorder (drops counted) instead of lossless backpressure",
    )
    sp.add_argument(
        "--queue", type=int, default=1000, metavar="N", help="recorder queue per topic (default 1000)"
    )
    sp.add_argument("--compression", choices=tuple(COMPRESSIONS), default="zstd", help="chunk compression")


def register(sub: Any) -> None:
    """Add `record`, `replay` and `info` to the `edgeloop` command."""
    sp = sub.add_parser("record", help="run a graph and record its topics to an MCAP file")
    sp.add_argument("graph", help="graph YAML file")
    sp.add_argument("-o", "--output", required=True, metavar="RUN.mcap", help="the recording to write")
    sp.add_argument(
        "--topics",
        nargs="+",
        action="extend",
        metavar="GLOB",
        help="record only topics matching these globs (e.g. 'cam/*'); default: every output",
    )
    _recording_options(sp)
    _run_options(sp)
    sp.set_defaults(func=_cmd_record)

    sp = sub.add_parser("replay", help="run a graph with its sources replaced by a recording")
    sp.add_argument("recording", help="an MCAP file written by `edgeloop record`")
    sp.add_argument("graph", nargs="?", help="graph YAML file (default: the graph stored in the recording)")
    sp.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="S",
        help="1 = recorded pace, 2 = twice as fast, 0 = as fast as possible and lossless",
    )
    sp.add_argument(
        "--loop",
        type=int,
        nargs="?",
        const=0,
        default=1,
        metavar="N",
        help="play N times (no N: until --duration or Ctrl-C)",
    )
    sp.add_argument(
        "--start", type=float, default=0.0, metavar="S", help="begin S seconds into the recording"
    )
    sp.add_argument("--end", type=float, default=None, metavar="S", help="stop S seconds into the recording")
    sp.add_argument(
        "--replace",
        nargs="+",
        action="extend",
        metavar="NODE",
        help="nodes to replace (default: every source with recorded outputs)",
    )
    times = sp.add_mutually_exclusive_group()
    times.add_argument(
        "--recorded-times",
        action="store_true",
        help="keep each message's recorded t_sense, bit-exact (latencies then measure the recording's age)",
    )
    times.add_argument(
        "--retime",
        action="store_true",
        help="map t_sense onto the replay clock (the default; kept for older scripts)",
    )
    sp.add_argument("--record", metavar="OUT.mcap", help="record the replayed run too (every topic)")
    _recording_options(sp)
    _run_options(sp)
    sp.set_defaults(func=_cmd_replay)

    sp = sub.add_parser("info", help="summarise an MCAP recording: topics, counts, rates, gaps, graph")
    sp.add_argument("recording")
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    sp.set_defaults(func=_cmd_info)


def _check_output(path: str, force: bool) -> None:
    p = Path(path)
    if p.exists() and not force:
        raise RecordingError(f"{path} exists; pass --force to overwrite it")
    if not p.parent.is_dir():
        raise RecordingError(f"{path}: directory {p.parent} does not exist")


def _with_recorder(
    graph: Graph, args: argparse.Namespace, out: str, topics: list[str], overrides: list[str]
) -> Graph:
    return add_recorder(
        graph,
        out,
        topics=topics,
        lossy=args.lossy,
        queue=args.queue,
        compression=args.compression,
        metadata=graph_metadata(graph, overrides),
    )


def _run(graph: Graph, args: argparse.Namespace, title: str) -> Any:
    from ..foreground import report_run, run_graph
    from ..graphfiles import ensure_parent
    from ..worker import setup_logging

    if args.stats_json:
        ensure_parent(args.stats_json, "--stats-json")  # before the run, not after it
    setup_logging("launcher")
    result = run_graph(graph.filename, graph=graph, duration_s=args.duration, transport=args.transport)
    report_run(result, title=title, stats_json=args.stats_json)
    return result


def _report_recording(path: str, view: dict[str, Any], topics: list[str]) -> int:
    """Say what was written, and which sent messages did not make it into the file."""
    try:
        info = summarize(path)
    except RecordingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kind = ", ".join(f"{c} × {n}" for c, n in info.compressions.items()) or "no chunks"
    per = f" ({info.size_bytes / info.messages:,.0f} B/message)" if info.messages else ""
    print(
        f"wrote {path}: {info.messages:,} messages on {len(topics)} topic(s), {info.size_bytes:,} bytes{per}, "
        f"chunks: {kind}"
    )
    for topic in topics:
        sent = view["outputs"].get(topic, {}).get("sent")
        got = info.topics[topic].messages if topic in info.topics else 0
        if sent is not None and sent > got:
            print(
                f"  {topic}: {sent - got:,} of {sent:,} sent not recorded (lossy drops, or still on the way "
                "when the run stopped)"
            )
    if info.error:
        print(f"error: {info.error}", file=sys.stderr)
    return 0 if info.complete else 1


def _cmd_record(args: argparse.Namespace) -> int:
    _check_output(args.output, args.force)
    graph = load_graph(args.graph, args.set, check_files=True)
    topics = select_topics(graph, args.topics)
    result = _run(_with_recorder(graph, args, args.output, topics, args.set), args, "edgeloop record summary")
    return max(int(result.exit_code), _report_recording(args.output, result.view, topics))


def _cmd_replay(args: argparse.Namespace) -> int:
    overview = read_overview(args.recording)
    if args.graph:
        graph = load_graph(args.graph, args.set, check_files=True)
    else:
        text = overview.graph.get("text")
        if not text:
            raise GraphError(
                f"{args.recording} holds no graph file: name one (`edgeloop replay RUN.mcap GRAPH.yaml`)"
            )
        graph = load_graph(
            overview.graph.get("filename") or "recorded.yaml",
            overview.overrides + args.set,
            text=text,
            base_dir=overview.graph.get("base_dir") or None,  # older recordings: the file name's folder
        )
    if args.speed < 0 or args.loop < 0 or args.start < 0 or (args.end is not None and args.end <= args.start):
        raise GraphError("replay: need --speed ≥ 0, --loop ≥ 0, --start ≥ 0 and --end after --start")
    plan = replace_sources(
        graph,
        args.recording,
        list(overview.topics),
        replace=args.replace,
        speed=args.speed,
        loops=args.loop,
        start_s=args.start,
        end_s=args.end,
        timestamps="recorded" if args.recorded_times else "replay",
    )
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    g = plan.graph
    topics: list[str] = []
    if args.record:
        _check_output(args.record, args.force)
        topics = recordable_topics(g)
        g = _with_recorder(g, args, args.record, topics, [])
    result = _run(g, args, f"edgeloop replay summary (speed {args.speed:g})")
    replayed = sum(
        result.view["nodes"].get(n, {}).get("counters", {}).get("replayed", 0) for n in plan.replaced
    )
    print(f"replayed {replayed:,.0f} messages from {args.recording} into {', '.join(plan.replaced)}")
    code = int(result.exit_code)
    if args.record:
        code = max(code, _report_recording(args.record, result.view, topics))
    return code


def _print_info(info: RecordingInfo) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    g = info.graph
    state = "complete" if info.complete else "INCOMPLETE"
    kind = ", ".join(f"{c} × {n}" for c, n in info.compressions.items()) or "no chunks"
    console.print(
        f"[bold]{info.path}[/]: MCAP, {info.size_bytes:,} bytes, {state}; chunks: {kind}; "
        f"written by {info.library or '?'}"
    )
    if g:
        console.print(
            f"graph '{g.get('name', '?')}' from {g.get('filename', '?')}, recorded {g.get('start_iso', '?')} "
            f"with edgeloop {g.get('edgeloop_version', '?')}"
        )
    per = f", {info.size_bytes / info.messages:,.0f} B/message in the file" if info.messages else ""
    console.print(f"{info.messages:,} messages over {info.duration_s:.3f} s{per}")
    t = Table()
    for col in ("topic", "messages", "rate Hz", "data bytes", "B/msg", "seq", "gaps", "restarts"):
        t.add_column(col, justify="left" if col in ("topic", "seq") else "right")
    for ti in info.topics.values():
        rate = "-" if ti.rate_hz != ti.rate_hz else f"{ti.rate_hz:,.1f}"
        seq = "-" if ti.seq_first is None else f"{ti.seq_first}..{ti.seq_last}"
        per_msg = f"{ti.bytes / ti.messages:,.0f}" if ti.messages else "-"
        t.add_row(
            ti.topic,
            f"{ti.messages:,}",
            rate,
            f"{ti.bytes:,}",
            per_msg,
            seq,
            f"{ti.gaps:,}",
            f"{ti.restarts:,}",
        )
    console.print(t)
    if info.error:
        console.print(f"[red]{info.error}[/]")


def _cmd_info(args: argparse.Namespace) -> int:
    info = summarize(args.recording)
    if args.json:
        print(json.dumps(info.to_dict(), indent=1))
    else:
        _print_info(info)
    return 0 if info.complete else 1
