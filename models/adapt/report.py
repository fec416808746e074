"""Reporting on-device adaptation: accuracy over time (PNG), a cost table, and DFA/BP ratios beside the paper's."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["PAPER", "ordered", "rolling", "ratios", "cost_table", "AccuracyPlot", "plot_accuracy"]

#: DFA vs BP on HAR, RRAM crossbars [Bhattacharjee et al., arXiv 2502.06736, abstract; SCIENCE 3.4]:
#: "up to 64.1 % lower energy, 10.1 % lower area overhead, 2.1× lower latency, up to 7.55 % higher accuracy".
PAPER: dict[str, float] = {
    "energy_dfa_over_bp": 1 - 0.641,
    "area_dfa_over_bp": 1 - 0.101,
    "latency_bp_over_dfa": 2.1,
    "accuracy_gain_pp": 7.55,
}


def ordered(keys: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Rule names in a stable order: none, dfa, bp, then any others as given."""
    known = [k for k in ("none", "dfa", "bp") if k in keys]
    return known + [k for k in keys if k not in known]


def rolling(hits: Sequence[int | bool], n: int) -> list[float]:
    """Mean of the last `n` values at every position (fewer at the start)."""
    out, acc = [], 0.0
    for i, h in enumerate(hits):
        acc += float(h)
        if i >= n:
            acc -= float(hits[i - n])
        out.append(acc / min(i + 1, n))
    return out


def _mean(v: Sequence[int | bool]) -> float:
    return sum(map(float, v)) / len(v) if v else float("nan")


def ratios(
    summaries: Mapping[str, Mapping[str, float]], hits: Mapping[str, Sequence[int | bool]], tail: int = 50
) -> dict[str, float]:
    """DFA/BP per update: energy, total area (crossbars + learning hardware), learning-only area;
    BP/DFA latency; DFA − BP accuracy over the last `tail` windows (percentage points)."""
    d, b = summaries.get("dfa"), summaries.get("bp")
    if not d or not b:
        return {}

    def div(x: float, y: float) -> float:
        return x / y if y else float("nan")

    return {
        "energy_dfa_over_bp": div(d["energy_pj_per_update"], b["energy_pj_per_update"]),
        "area_dfa_over_bp": div(d["total_mm2"], b["total_mm2"]),
        "learning_area_dfa_over_bp": div(d["learning_mm2"], b["learning_mm2"]),
        "latency_bp_over_dfa": div(b["latency_ns_per_update"], d["latency_ns_per_update"]),
        "accuracy_gain_pp": 100
        * (_mean(list(hits.get("dfa", []))[-tail:]) - _mean(list(hits.get("bp", []))[-tail:])),
    }


def _f(v: float, fmt: str = ".4g") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def cost_table(
    summaries: Mapping[str, Mapping[str, float]],
    hits: Mapping[str, Sequence[int | bool]],
    head: int = 20,
    tail: int = 50,
) -> str:
    """Markdown: per rule accuracy (first `head` windows, last `tail`, all), updates, energy and latency
    per update, area; then DFA/BP ratios next to the paper's."""
    lines = [
        f"| rule | acc first {head} | acc last {tail} | acc all | updates | pJ/update | ns/update | "
        "learning mm² | total mm² | inference pJ/window |",
        "|" + "---|" * 10,
    ]
    for rule in ordered(summaries):
        s, h = summaries[rule], list(hits.get(rule, []))
        lines.append(
            f"| {rule} | {_f(100 * _mean(h[:head]), '.1f')} % | {_f(100 * _mean(h[-tail:]), '.1f')} % | "
            f"{_f(100 * _mean(h), '.1f')} % | {int(s['updates'])} | {_f(s['energy_pj_per_update'])} | "
            f"{_f(s['latency_ns_per_update'])} | {_f(s['learning_mm2'])} | {_f(s['total_mm2'])} | "
            f"{_f(s['inference_energy_pj_per_window'])} |"
        )
    r = ratios(summaries, hits, tail)
    if r:
        lines += [
            "",
            "| DFA vs BP | ours | paper (arXiv 2502.06736) |",
            "|---|---|---|",
            f"| energy per update, DFA/BP | {_f(r['energy_dfa_over_bp'], '.3f')} | "
            f"{PAPER['energy_dfa_over_bp']:.3f} (−64.1 %) |",
            f"| area (crossbars + learning), DFA/BP | {_f(r['area_dfa_over_bp'], '.3f')} | "
            f"{PAPER['area_dfa_over_bp']:.3f} (−10.1 %) |",
            f"| latency per update, BP/DFA | {_f(r['latency_bp_over_dfa'], '.2f')}× | "
            f"{PAPER['latency_bp_over_dfa']}× |",
            f"| accuracy, DFA − BP (last {tail}) | {_f(r['accuracy_gain_pp'], '+.2f')} pp | "
            f"up to +{PAPER['accuracy_gain_pp']} pp |",
        ]
    return "\n".join(lines) + "\n"


class AccuracyPlot:
    """Rolling accuracy (last `smooth` windows) per rule over the window index, as a PNG.

    The figure is built once and only its lines change between `save` calls, so a redraw is cheap;
    matplotlib's object API with the Agg canvas (no pyplot state: safe in a worker thread, one call at
    a time). Files are written to a temporary name and renamed, so a reader never sees half a PNG.
    """

    COLORS: ClassVar[dict[str, str]] = {"none": "tab:gray", "dfa": "tab:blue", "bp": "tab:orange"}

    def __init__(self, smooth: int = 20, title: str = "On-device adaptation on emulated RRAM") -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.smooth = smooth
        self.fig = Figure(figsize=(7.5, 4.2))
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot(1, 1, 1)
        self.ax.set_xlabel("window")
        self.ax.set_ylabel(f"accuracy, last {smooth} windows (%)")
        self.ax.set_ylim(0, 102)
        self.ax.grid(alpha=0.3)
        self.ax.set_title(title)
        self.fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.12)
        self.lines: dict[str, Any] = {}

    def save(self, hits: Mapping[str, Sequence[int | bool]], path: str | Path) -> Path:
        longest = 1
        for rule in ordered(hits):
            h = hits[rule]
            if rule not in self.lines:
                label = "none (frozen)" if rule == "none" else rule.upper()
                (self.lines[rule],) = self.ax.plot([], [], label=label, color=self.COLORS.get(rule))
                self.ax.legend(loc="lower right")
            self.lines[rule].set_data(range(1, len(h) + 1), [100 * v for v in rolling(list(h), self.smooth)])
            longest = max(longest, len(h))
        self.ax.set_xlim(0, longest + 1)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        self.fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, out)
        return out


def plot_accuracy(
    hits: Mapping[str, Sequence[int | bool]],
    path: str | Path,
    smooth: int = 20,
    title: str = "On-device adaptation on emulated RRAM",
) -> Path:
    """One-shot `AccuracyPlot(smooth, title).save(hits, path)`."""
    return AccuracyPlot(smooth, title).save(hits, path)
