"""Benchmark results in the project's convention: a table on stdout and a JSON list of cases."""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Case", "write_json", "print_table", "percentile", "machine_info"]


@dataclass
class Case:
    """One measured figure. `baseline` is the reference measured in the same run (or None);
    `ratio` = value / baseline; `target` is the issue's target as text; `met` says if it holds."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline not in (None, 0):
            self.ratio = float(self.value) / float(self.baseline)
        if self.met is None:
            self.met = True if self.target is None else _check(self.target, self)


def _check(target: str, case: Case) -> bool:
    """Evaluate targets of the form '<lhs> <op> <number>' where lhs is 'ratio' or 'value'."""
    parts = target.split()
    if len(parts) != 3 or parts[0] not in ("ratio", "value") or parts[1] not in ("<=", ">=", "<", ">", "=="):
        raise ValueError(f"target {target!r}: write it as 'ratio <= 1.2' or 'value >= 100'")
    lhs = case.ratio if parts[0] == "ratio" else case.value
    if lhs is None:
        return False
    rhs = float(parts[2])
    return bool(
        {"<=": lhs <= rhs, ">=": lhs >= rhs, "<": lhs < rhs, ">": lhs > rhs, "==": lhs == rhs}[parts[1]]
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for an empty list."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=1000, method="inclusive")[min(998, max(0, int(q * 10) - 1))])


def machine_info() -> dict[str, Any]:
    import os

    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def print_table(cases: list[Case], title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None)
    for col in ("case", "value", "unit", "baseline", "ratio", "target", "met"):
        table.add_column(col, justify="right" if col in ("value", "baseline", "ratio") else "left")
    fmt: Any = lambda v: "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    for c in cases:
        met = "" if c.target is None else ("yes" if c.met else "MISSED")
        table.add_row(c.name, fmt(float(c.value)), c.unit, fmt(c.baseline), fmt(c.ratio), c.target or "", met)
    console = Console()
    (console if console.is_terminal else Console(width=160)).print(table)


def write_json(cases: list[Case], path: str | Path) -> None:
    Path(path).write_text(json.dumps([asdict(c) for c in cases], indent=2, default=float) + "\n")
