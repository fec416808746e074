"""The `edgeloop` command: run, check, graph, nodes, schema, bench, plus commands plugged in by packages."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from .cli_errors import bench_names_text, check_metrics_port, silence_stdout, version_text
from .errors import EdgeloopError, GraphError

__all__ = ["main", "build_parser"]


def _cmd_run(args: argparse.Namespace) -> int:
    from .foreground import report_run, run_graph
    from .graph import load_graph
    from .graphfiles import ensure_parent
    from .worker import setup_logging

    graph = load_graph(args.graph, args.set, check_files=True)
    if args.metrics_port is not None:
        check_metrics_port(args.metrics_port)
    if args.stats_json:
        ensure_parent(args.stats_json, "--stats-json")  # before the run, not after it
    setup_logging("launcher")
    result = run_graph(
        args.graph,
        graph=graph,
        duration_s=args.duration,
        overrides=args.set,
        transport=args.transport,
        top=args.top,
        metrics_port=args.metrics_port,
        broker_url=args.broker,
        keys_dir=args.keys,
        advertise=args.advertise,
        fleet=args.fleet,
        broker_port=args.broker_port,
        backend=args.backend or None,  # every worker's plan carries it, remote ones too
        restore_signals=False,
    )  # a late Ctrl-C must not interrupt the summary
    report_run(result, stats_json=args.stats_json)
    return result.exit_code


def _cmd_check(args: argparse.Namespace) -> int:
    from .graph import load_graph

    g = load_graph(args.graph, args.set, check_files=True)
    print(
        f"{args.graph}: ok — graph '{g.spec.name}', {len(g.spec.nodes)} nodes, {len(g.edges)} edges, "
        f"{len(g.agents)} agent(s): {', '.join(g.agents)}"
    )
    return 0


def _cmd_graph(args: argparse.Namespace) -> int:
    from .graph import load_graph
    from .render import to_dot, to_mermaid

    g = load_graph(args.graph, args.set)
    if args.format == "png":
        from .render import to_png

        out = args.output or f"{g.spec.name}.png"
        to_png(g, out)
        print(out)
        return 0
    text = to_mermaid(g) if args.format == "mermaid" else to_dot(g)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_nodes(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .registry import catalogue, resolve_node

    table = Table(title="edgeloop nodes")
    for col in ("name", "inputs", "outputs", "parameters", "description"):
        table.add_column(col, overflow="fold")  # long names wrap, never end in `…`
    rows: list[dict[str, Any]] = []
    for name in catalogue():
        if args.filter and args.filter not in name:
            continue
        try:
            cls = resolve_node(name)
        except GraphError as exc:
            table.add_row(name, "", "", f"[red]unavailable: {exc}[/]", "")
            continue
        params = [_param_text(pname, field) for pname, field in cls.Params.model_fields.items()]
        inputs = "any" if cls.dynamic_inputs else ", ".join(cls.inputs)
        rows.append(
            {
                "name": name,
                "inputs": list(cls.inputs),
                "dynamic_inputs": cls.dynamic_inputs,
                "outputs": list(cls.outputs),
                "params": cls.Params.model_json_schema(),
                "doc": " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()),
            }
        )
        table.add_row(name, inputs, ", ".join(cls.outputs), "\n".join(params), rows[-1]["doc"])
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        Console().print(table)
    return 0


def _param_text(name: str, field: Any) -> str:
    """`rate_hz: float = 100.0`, or `path: str (required)`; a default made by a factory shows its value."""
    from rich.markup import escape

    a = field.annotation
    ann = a.__name__ if isinstance(a, type) else str(a).replace("typing.", "")  # list[int], Literal[…]
    if field.is_required():
        return escape(f"{name}: {ann} (required)")
    return escape(f"{name}: {ann} = {field.get_default(call_default_factory=True)!r}")


def _cmd_schema(args: argparse.Namespace) -> int:
    from .graph import GraphSpec

    print(json.dumps(GraphSpec.model_json_schema(by_alias=True), indent=2))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .benchkit import print_table, write_json
    from .registry import import_target, load_plugin_table

    table = load_plugin_table("edgeloop.benches")
    if args.name not in table:
        print(f"unknown benchmark '{args.name}' (available: {', '.join(sorted(table))})", file=sys.stderr)
        return 2
    if args.json:
        from .graphfiles import ensure_parent

        ensure_parent(args.json, "--json")
    fn = import_target(table[args.name])
    cases = fn(list(args.rest) + (["--quick"] if args.quick else []))
    print_table(cases, title=f"edgeloop bench {args.name}")
    if args.json:
        write_json(cases, args.json)
        print(f"wrote {args.json}")
    return 0


async def _run_plan(plan: dict[str, Any], stop: Any) -> int:
    """`edgeloop agent`'s part runner: a worker process for the plan `edgeloop run` deployed."""
    from .remote import run_plan_subprocess

    return await run_plan_subprocess(plan, stop)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; `command` names the subcommand about to run (its plugin is imported)."""
    p = argparse.ArgumentParser(
        prog="edgeloop", description="Neuromorphic sensing-to-action loops as YAML graphs."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=version_text())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def graph_cmd(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("graph", help="graph YAML file")
        sp.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NODE.PARAM=VALUE",
            help="override a node parameter (repeatable; value parsed as YAML)",
        )
        return sp

    sp = graph_cmd("run", "run a graph until it finishes, --duration passes, or Ctrl-C")
    sp.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    sp.add_argument(
        "--transport",
        choices=("auto", "tcp", "curve"),
        default="auto",
        help="auto: ipc on one host, tcp + CURVE across hosts; tcp: force tcp on loopback; "
        "curve: tcp + CURVE on loopback (to measure its cost)",
    )
    sp.add_argument(
        "--stats-json",
        metavar="PATH",
        help="write the final statistics as JSON (missing folders are created)",
    )
    sp.add_argument(
        "--backend",
        metavar="SPEC",
        help="hardware backend for every inference node, e.g. "
        "'ideal', 'rram', 'rram:adc_bits=6,read_noise=0.01' (overrides the graph's `backend:`)",
    )
    sp.add_argument("--top", action="store_true", help="show the live `edgeloop top` view while running")
    sp.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT"
    )
    sp.add_argument(
        "--broker",
        metavar="URL",
        help="MQTT broker of the fleet (agents with a remote `host` are "
        "deployed through it to `edgeloop agent`); default: an embedded broker, started only if needed",
    )
    sp.add_argument(
        "--broker-port", type=int, metavar="PORT", help="port of the embedded broker (default 1883)"
    )
    sp.add_argument("--fleet", default="default", help="fleet name (MQTT topic prefix edgeloop/FLEET/)")
    sp.add_argument(
        "--keys",
        metavar="DIR",
        help="CURVE key directory (default: $EDGELOOP_KEYS_DIR or "
        "~/.config/edgeloop/keys): this host's NAME.key_secret files and every agent's public NAME.key",
    )
    sp.add_argument(
        "--advertise",
        metavar="HOST",
        help="this host's address as the other hosts reach it "
        "(default: the local address that routes to the first remote host)",
    )
    sp.set_defaults(func=_cmd_run)
    from .cli_runs import register as register_runs  # list, top, topic

    register_runs(sub)
    graph_cmd("check", "validate a graph file (nothing is started)").set_defaults(func=_cmd_check)
    sp = graph_cmd("graph", "draw a graph as Mermaid, Graphviz DOT or PNG")
    sp.add_argument("--format", choices=("mermaid", "dot", "png"), default="mermaid")
    sp.add_argument("-o", "--output", help="write to a file instead of stdout")
    sp.set_defaults(func=_cmd_graph)
    sp = sub.add_parser("nodes", help="the node catalogue: ports and parameters")
    sp.add_argument("filter", nargs="?", help="only names containing this text")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_nodes)
    sub.add_parser("schema", help="JSON Schema of the graph file").set_defaults(func=_cmd_schema)
    sp = sub.add_parser(
        "bench",
        help="run a benchmark: prints a table, --json writes the cases",
        epilog=bench_names_text() if command == "bench" else None,
    )
    sp.add_argument("name", help="the benchmark (listed below); its own options follow it")
    sp.add_argument("--json", metavar="PATH", help="write the cases as JSON (missing folders are created)")
    sp.add_argument("--quick", action="store_true", help="a short variant (CI-sized)")
    sp.set_defaults(func=_cmd_bench)
    from .recording.cli import register as register_recording  # record, replay, info

    register_recording(sub)
    from .fleet.cli import register_agent_command, register_broker_command, register_keys_command

    register_agent_command(sub, run_plan=_run_plan)
    register_keys_command(sub)
    register_broker_command(sub)
    _register_plugins(sub, command)
    return p


def _register_plugins(sub: Any, command: str | None) -> None:
    """Commands contributed through the `edgeloop.commands` entry point (train, quantize, hw, …).

    Only the command being run is imported (science commands pull in torch, which takes seconds);
    the others appear in `--help` as names.
    """
    from .registry import import_target, load_plugin_table

    for name, target in sorted(load_plugin_table("edgeloop.commands").items()):
        if name != command:
            sp = sub.add_parser(
                name, help=f"(from {target.split(':')[0]}; `edgeloop {name} --help`)", add_help=False
            )
            sp.add_argument("args", nargs=argparse.REMAINDER)
            continue
        try:
            import_target(target)(sub)
        except Exception as exc:  # one broken plugin must not break the CLI
            sp = sub.add_parser(name, help=f"(unavailable: {exc})")
            sp.set_defaults(
                func=lambda _a, _e=exc: (print(f"command unavailable: {_e}", file=sys.stderr), 2)[1]
            )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.rest = extra  # benchmark-specific options
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout's reader went away (`edgeloop info --json | head`): its choice
        silence_stdout()
        return 0
    except GraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EdgeloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
