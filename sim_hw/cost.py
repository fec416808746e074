"""Cost reports: what the emulated hardware spent, per layer and in total, split by component and phase."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LayerCost", "CostReport", "PHASES", "COMPONENTS"]

PHASES: tuple[str, ...] = ("inference", "learning")
# Usual component names (a backend may add its own, e.g. LoAS "cache", "dram", "join").
COMPONENTS: tuple[str, ...] = ("array", "dac", "adc", "shift_add", "buffer", "write")


@dataclass
class LayerCost:
    """Cost of one layer in one phase, accumulated over `calls` invocations.

    Units: `energy_pj` maps component → picojoules; `latency_ns` is the summed time of the calls
    (layers run one after another); `area_mm2` is the silicon the layer occupies (not summed over
    calls); `utilisation` in [0, 1] is the fraction of the allocated hardware doing useful work;
    `macs` counts logical multiply-accumulates (dense, as a digital processor would count them);
    `counts` holds event counts (ADC conversions, pulses, joins...); a positive `counts["area_shared"]`
    marks a layer that runs on one shared chip (LoAS), whose area is counted once in report totals.

    Example: `LayerCost("fc1", energy_pj={"adc": 3.0, "array": 1.0}, macs=40).energy_total_pj` → 4.0
    """

    name: str
    phase: str = "inference"
    energy_pj: dict[str, float] = field(default_factory=dict)
    latency_ns: float = 0.0
    area_mm2: float = 0.0
    utilisation: float = 0.0
    macs: int = 0
    calls: int = 1
    counts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"layer {self.name!r}: phase {self.phase!r} is not one of {PHASES}")

    @property
    def energy_total_pj(self) -> float:
        return float(sum(self.energy_pj.values()))

    def merged(self, other: LayerCost) -> LayerCost:
        """The cost of both (same layer, same phase): energies, latency, MACs, calls and counts add;
        area is the larger; utilisation is latency-weighted."""
        if (other.name, other.phase) != (self.name, self.phase):
            raise ValueError(f"cannot merge {other.name!r}/{other.phase} into {self.name!r}/{self.phase}")
        energy = dict(self.energy_pj)
        for k, v in other.energy_pj.items():
            energy[k] = energy.get(k, 0.0) + v
        counts = dict(self.counts)
        for k, v in other.counts.items():
            counts[k] = counts.get(k, 0.0) + v
        w1, w2 = (self.latency_ns, other.latency_ns) if self.latency_ns + other.latency_ns > 0 else (1.0, 1.0)
        util = (self.utilisation * w1 + other.utilisation * w2) / (w1 + w2)
        return LayerCost(
            self.name,
            self.phase,
            energy,
            self.latency_ns + other.latency_ns,
            max(self.area_mm2, other.area_mm2),
            util,
            self.macs + other.macs,
            self.calls + other.calls,
            counts,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "energy_pj": {k: float(v) for k, v in self.energy_pj.items()},
            "energy_total_pj": self.energy_total_pj,
            "latency_ns": float(self.latency_ns),
            "area_mm2": float(self.area_mm2),
            "utilisation": float(self.utilisation),
            "macs": int(self.macs),
            "calls": int(self.calls),
            "counts": {k: float(v) for k, v in self.counts.items()},
        }


class CostReport:
    """Per-layer costs of a run (or of everything since `reset_cost()`), with totals.

    Layers are keyed by (name, phase) and kept in first-seen order; adding two reports merges
    entries of the same layer and phase. Totals: energy and latency add up (layers run in
    sequence), area adds over distinct layers, utilisation is area-weighted.

    Example:
        >>> r = CostReport([LayerCost("fc", energy_pj={"adc": 2.0}, macs=4)])
        >>> (r + r).total_energy_pj, (r + r).pj_per_mac
        (4.0, 0.5)
    """

    def __init__(self, layers: Iterable[LayerCost] = (), backend: str = "") -> None:
        self.backend = backend
        self._layers: dict[tuple[str, str], LayerCost] = {}
        for layer in layers:
            self.add_layer(layer)

    def add_layer(self, layer: LayerCost) -> None:
        key = (layer.name, layer.phase)
        self._layers[key] = self._layers[key].merged(layer) if key in self._layers else layer

    @property
    def layers(self) -> list[LayerCost]:
        return list(self._layers.values())

    def layer(self, name: str, phase: str = "inference") -> LayerCost:
        try:
            return self._layers[(name, phase)]
        except KeyError:
            have = ", ".join(f"{n}/{p}" for n, p in self._layers) or "none"
            raise KeyError(f"no cost for layer {name!r} in phase {phase!r} (have: {have})") from None

    def __add__(self, other: CostReport) -> CostReport:
        if not isinstance(other, CostReport):
            return NotImplemented
        out = CostReport(self.layers, backend=self.backend or other.backend)
        for layer in other.layers:
            out.add_layer(layer)
        return out

    def __radd__(self, other: object) -> CostReport:
        if other == 0:  # lets sum(reports) work
            return self
        return NotImplemented

    def __len__(self) -> int:
        return len(self._layers)

    def phase(self, phase: str) -> CostReport:
        """Only the entries of one phase ("inference" or "learning")."""
        if phase not in PHASES:
            raise ValueError(f"phase {phase!r} is not one of {PHASES}")
        return CostReport([c for c in self.layers if c.phase == phase], backend=self.backend)

    @property
    def total_energy_pj(self) -> float:
        return float(sum(c.energy_total_pj for c in self.layers))

    @property
    def total_latency_ns(self) -> float:
        return float(sum(c.latency_ns for c in self.layers))

    @property
    def total_area_mm2(self) -> float:
        area: dict[str, float] = {}
        shared = 0.0
        for c in self.layers:
            if c.counts.get("area_shared", 0) > 0:
                shared = max(shared, c.area_mm2)
            else:
                area[c.name] = max(area.get(c.name, 0.0), c.area_mm2)
        return float(sum(area.values()) + shared)

    @property
    def total_macs(self) -> int:
        return int(sum(c.macs for c in self.layers))

    @property
    def utilisation(self) -> float:
        weights = [(c.area_mm2 or 1.0, c.utilisation) for c in self.layers]
        total = sum(w for w, _ in weights)
        return float(sum(w * u for w, u in weights) / total) if total else 0.0

    @property
    def pj_per_mac(self) -> float:
        return self.total_energy_pj / self.total_macs if self.total_macs else float("nan")

    def breakdown(self) -> dict[str, float]:
        """Total energy by component (pJ)."""
        out: dict[str, float] = {}
        for c in self.layers:
            for k, v in c.energy_pj.items():
                out[k] = out.get(k, 0.0) + float(v)
        return out

    def energy_by_phase(self) -> dict[str, float]:
        out = {p: 0.0 for p in PHASES}
        for c in self.layers:
            out[c.phase] += c.energy_total_pj
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, floats and ints only (msgpack/JSON friendly)."""
        return {
            "backend": self.backend,
            "layers": [c.to_dict() for c in self.layers],
            "total": {
                "energy_pj": self.total_energy_pj,
                "latency_ns": self.total_latency_ns,
                "area_mm2": self.total_area_mm2,
                "utilisation": self.utilisation,
                "macs": self.total_macs,
                "pj_per_mac": self.pj_per_mac if self.total_macs else None,
                "breakdown_pj": self.breakdown(),
                "energy_by_phase_pj": self.energy_by_phase(),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostReport:
        layers = [
            LayerCost(
                d["name"],
                d["phase"],
                dict(d["energy_pj"]),
                d["latency_ns"],
                d["area_mm2"],
                d["utilisation"],
                d["macs"],
                d["calls"],
                dict(d.get("counts", {})),
            )
            for d in data["layers"]
        ]
        return cls(layers, backend=str(data.get("backend", "")))

    def table(self, title: str | None = None) -> str:
        """A per-layer text table (rendered with rich) with a total row."""
        from rich.console import Console
        from rich.table import Table

        comps = list(self.breakdown())
        table = Table(title=title or f"{self.backend or 'hardware'} cost report")
        for col in (
            "layer",
            "phase",
            "calls",
            "MACs",
            "energy pJ",
            "pJ/MAC",
            "latency ns",
            "area mm²",
            "util",
        ):
            table.add_column(col, justify="left" if col in ("layer", "phase") else "right")
        for comp in comps:
            table.add_column(f"{comp} %", justify="right")

        def row(
            name: str,
            phase: str,
            calls: str,
            macs: int,
            e: float,
            lat: float,
            area: float,
            util: float,
            parts: Mapping[str, float],
        ) -> list[str]:
            per_mac = f"{e / macs:.4g}" if macs else "-"
            shares = [f"{100 * parts.get(c, 0.0) / e:.1f}" if e else "-" for c in comps]
            return [
                name,
                phase,
                calls,
                f"{macs:,}",
                f"{e:.4g}",
                per_mac,
                f"{lat:.4g}",
                f"{area:.4g}",
                f"{util:.2f}",
                *shares,
            ]

        for c in self.layers:
            table.add_row(
                *row(
                    c.name,
                    c.phase,
                    str(c.calls),
                    c.macs,
                    c.energy_total_pj,
                    c.latency_ns,
                    c.area_mm2,
                    c.utilisation,
                    c.energy_pj,
                )
            )
        table.add_row(
            *row(
                "TOTAL",
                "",
                "",
                self.total_macs,
                self.total_energy_pj,
                self.total_latency_ns,
                self.total_area_mm2,
                self.utilisation,
                self.breakdown(),
            )
        )
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(table)
        return console.export_text()

    def __repr__(self) -> str:
        return (
            f"CostReport(backend={self.backend!r}, layers={len(self)}, energy_pj={self.total_energy_pj:.4g}, "
            f"latency_ns={self.total_latency_ns:.4g}, macs={self.total_macs})"
        )
