"""The tracks picture: where the agents looked and what they tracked, over the true target paths (PNG).

Also a command, `python -m nodes.swarm.plot LOG.json OUT.png`, so that a long-running process can
draw in a short-lived child and never load matplotlib itself (its import and exit take seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .agent import agent_name
from .tracklog import TrackLog
from .world import sectors

__all__ = ["plot_tracks", "main"]


def plot_tracks(log: TrackLog, path: str | Path, *, title: str = "edgeloop swarm") -> Path:
    """Draw the track log to a PNG (matplotlib, Agg backend): true target paths in grey, each agent's
    camera-centre path and last view in its colour, its confirmed track estimates as dots."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    w = log.world
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 6.8), dpi=100)
    try:
        for s in sectors(log.n_agents, w.width, w.height):
            ax.add_patch(
                Rectangle((s.x0, s.y0), s.x1 - s.x0, s.y1 - s.y0, fill=False, ls=":", lw=0.8, color="0.6")
            )
        colors = plt.get_cmap("tab10")
        if log.times:
            t = np.array(log.times)
            truth = w.positions(np.linspace(t[0], t[-1], max(2, 4 * len(t))))
            for k in range(w.n_targets):
                ax.plot(truth[:, k, 0], truth[:, k, 1], color="0.55", lw=1.0, zorder=1)
                ax.plot(*truth[-1, k], "o", color="0.35", ms=4, zorder=2)
            centers = np.array(log.centers)  # (T, n_agents, 2)
            for a in range(log.n_agents):
                c = colors(a % 10)
                est = [e[a] for e in log.estimates if len(e[a])]
                if est:
                    pts = np.concatenate(est)
                    ax.plot(pts[:, 0], pts[:, 1], ".", color=c, ms=2.0, alpha=0.6, zorder=3)
                ax.plot(
                    centers[:, a, 0],
                    centers[:, a, 1],
                    "-",
                    color=c,
                    lw=2.0,
                    zorder=4,
                    label=f"{agent_name(a)} camera",
                )
                last = centers[-1, a]
                if np.isfinite(last).all():
                    h = log.fov_px / 2
                    ax.add_patch(
                        Rectangle((last[0] - h, last[1] - h), 2 * h, 2 * h, fill=False, color=c, lw=1.2)
                    )
        m = log.summary()
        ax.set_title(
            f"{title}\ncoverage {m['coverage_pct']:.0f}% (parked: {m['static_coverage_pct']:.0f}%), "
            f"tracked {m['tracked_pct']:.0f}%",
            fontsize=10,
        )
        ax.set_xlim(0, w.width)
        ax.set_ylim(w.height, 0)  # image convention: y grows downward, as on the sensors
        ax.set_aspect("equal")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=4, fontsize=8, frameon=False)
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m nodes.swarm.plot LOG.json OUT.png [TITLE]`: draw a saved track log."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        sys.stderr.write("usage: python -m nodes.swarm.plot LOG.json OUT.png [TITLE]\n")
        return 2
    log = TrackLog.from_json(Path(args[0]).read_text(encoding="utf-8"))
    plot_tracks(log, args[1], **({"title": args[2]} if len(args) == 3 else {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
