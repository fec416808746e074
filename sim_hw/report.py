"""Human-facing views of a CostReport: the energy-breakdown chart (PNG) and a text summary."""

from __future__ import annotations

from pathlib import Path

from sim_hw.cost import CostReport

__all__ = ["plot_energy_breakdown", "summary"]


def plot_energy_breakdown(report: CostReport, path_png: str | Path, title: str | None = None) -> Path:
    """Write a stacked bar chart of energy per layer (and phase) split by component; returns the path.

    Uses matplotlib's Agg backend (no display needed).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    layers = report.layers
    if not layers:
        raise ValueError("plot_energy_breakdown: the report has no layers (run the model first)")
    comps = list(report.breakdown())
    labels = [c.name if c.phase == "inference" else f"{c.name} ({c.phase})" for c in layers]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(layers) + 3), 4.5))
    bottom = [0.0] * len(layers)
    cmap = plt.get_cmap("tab10")
    for i, comp in enumerate(comps):
        vals = [c.energy_pj.get(comp, 0.0) for c in layers]
        ax.bar(labels, vals, bottom=bottom, label=comp, color=cmap(i % 10))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("energy (pJ)")
    total = report.total_energy_pj
    per_mac = f", {report.pj_per_mac:.3g} pJ/MAC" if report.total_macs else ""
    ax.set_title(title or f"{report.backend or 'hardware'}: {total:.4g} pJ total{per_mac}")
    if comps:
        ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary(report: CostReport) -> str:
    """One line: total energy, latency, area, utilisation and pJ/MAC."""
    per_mac = f"{report.pj_per_mac:.4g} pJ/MAC" if report.total_macs else "no MACs"
    return (
        f"{report.backend or 'hardware'}: {report.total_energy_pj:.4g} pJ, {report.total_latency_ns:.4g} ns, "
        f"{report.total_area_mm2:.4g} mm², utilisation {report.utilisation:.2f}, {per_mac}"
    )
