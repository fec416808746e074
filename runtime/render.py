"""Graph pictures: Mermaid and Graphviz DOT text, agents as clusters, feedback edges drawn distinctly."""

from __future__ import annotations

from .graph import Graph

__all__ = ["to_mermaid", "to_dot", "to_png"]


def _label(e_policy: str, queue: int, timeout: float | None) -> str:
    parts = [e_policy if e_policy != "drop_oldest" else f"q{queue}"]
    if e_policy == "backpressure":
        parts = [f"bp q{queue}"]
    if timeout:
        parts.append(f"{timeout:g} ms")
    return " ".join(parts)


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for agent in graph.agents:
        lines.append(f"  subgraph {agent}")
        for n in graph.nodes_of(agent):
            lines.append(f'    {n.id}["{n.id}<br/><small>{n.uses}</small>"]')
        lines.append("  end")
    timers = sorted({e.source for e in graph.edges if e.is_timer})
    for t in timers:
        lines.append(f'  {t.replace("/", "_")}(("{t}"))')
    back = graph.feedback_edges()
    for e in graph.edges:
        src = e.source.replace("/", "_") if e.is_timer else e.source.split("/")[0]
        port = e.source.split("/")[1] if not e.is_timer else ""
        label = f"{port}→{e.target_input} {_label(e.spec.policy, e.spec.queue, e.spec.timeout_ms)}".strip()
        arrow = "-.->" if e in back else "-->"
        lines.append(f'  {src} {arrow}|"{label}"| {e.target_node}')
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph) -> str:
    lines = [f'digraph "{graph.spec.name}" {{', "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for agent in graph.agents:
        lines.append(f'  subgraph "cluster_{agent}" {{ label="{agent}"; style=rounded;')
        for n in graph.nodes_of(agent):
            lines.append(f'    "{n.id}" [label="{n.id}\\n{n.uses}"];')
        lines.append("  }")
    for t in sorted({e.source for e in graph.edges if e.is_timer}):
        lines.append(f'  "{t}" [shape=ellipse, style=dashed];')
    back = graph.feedback_edges()
    for e in graph.edges:
        src = e.source if e.is_timer else e.source.split("/")[0]
        port = "" if e.is_timer else e.source.split("/")[1]
        label = f"{port}→{e.target_input}\\n{_label(e.spec.policy, e.spec.queue, e.spec.timeout_ms)}"
        style = ', style=dashed, color="firebrick", constraint=false' if e in back else ""
        lines.append(f'  "{src}" -> "{e.target_node}" [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_png(graph: Graph, path: str) -> None:
    """Render through Graphviz's `dot` program; says how to install it when it is missing."""
    import shutil
    import subprocess

    from .errors import EdgeloopError

    dot = shutil.which("dot")
    if dot is None:
        raise EdgeloopError(
            "PNG output needs Graphviz's `dot` program, which is not installed (Debian/Ubuntu: "
            "`apt-get install graphviz`; macOS: `brew install graphviz`); `--format dot` or "
            "`--format mermaid` work without it"
        )
    proc = subprocess.run(
        [dot, "-Tpng", "-o", path],
        input=to_dot(graph),
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise EdgeloopError(f"Graphviz failed: {proc.stderr.strip()}")
