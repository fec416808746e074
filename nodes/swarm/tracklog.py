"""The swarm's track log: agent positions and their confirmed tracks on a fixed time grid, with metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .world import World, coverage, sectors

__all__ = ["TrackLog", "AgentState"]


@dataclass
class AgentState:
    """The latest known state of one agent: camera centre (px), confirmed tracks (k, 6) at `t_us`."""

    center: np.ndarray | None = None
    t_us: int = 0
    tracks: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    safe: bool = False


class TrackLog:
    """Samples every `interval_us` of world time: where each agent looks and where it thinks targets are.

    `observe_share` / `observe_position` update an agent's state; `advance(t_us)` takes every grid
    sample up to `t_us` from the latest states (tracks extrapolated to the sample time). The JSON form
    is rounded to 1/1000 px, so identical runs give identical bytes.
    """

    def __init__(self, world: World, n_agents: int, fov_px: int, *, interval_us: int = 50_000) -> None:
        self.world, self.n_agents, self.fov_px, self.interval_us = world, n_agents, fov_px, interval_us
        self.agents = [AgentState() for _ in range(n_agents)]
        self.times: list[int] = []
        self.centers: list[np.ndarray] = []  # (n_agents, 2), NaN where unknown
        self.estimates: list[list[np.ndarray]] = []  # per sample, per agent (k, 2)
        self.notes: list[tuple[int, str]] = []
        self._next: int | None = None

    def observe_share(self, share: dict[str, Any]) -> None:
        a = self.agents[int(share["agent"])]
        a.t_us = int(share["t_us"])
        a.tracks = np.asarray(share["tracks"], np.float64).reshape(-1, 6)
        if a.center is None or not np.isfinite(a.center).all():
            a.center = np.asarray(share["center"], np.float64)
        self.advance(a.t_us)

    def observe_position(self, agent: int, xy: Any, *, safe: bool = False) -> None:
        self.agents[agent].center = np.asarray(xy, np.float64)
        self.agents[agent].safe = safe

    def note(self, t_us: int, text: str) -> None:
        self.notes.append((int(t_us), text))

    def advance(self, t_us: int) -> None:
        if self._next is None:
            self._next = (t_us // self.interval_us + 1) * self.interval_us
        while self._next <= t_us:
            t = self._next
            self.times.append(t)
            self.centers.append(
                np.array(
                    [a.center if a.center is not None else (np.nan, np.nan) for a in self.agents], np.float64
                )
            )
            self.estimates.append(
                [a.tracks[:, 1:3] + a.tracks[:, 3:5] * (t - a.t_us) * 1e-6 for a in self.agents]
            )
            self._next += self.interval_us

    # ----- metrics -----
    def summary(self, tol_px: float = 3.0) -> dict[str, float]:
        """Coverage (% of target-time inside some agent's view), tracked (% within `tol_px` of some
        agent's confirmed track), and the coverage the same cameras would give parked at home."""
        if not self.times:
            return {
                "samples": 0,
                "coverage_pct": float("nan"),
                "tracked_pct": float("nan"),
                "static_coverage_pct": float("nan"),
            }
        truth = self.world.positions(np.array(self.times))  # (T, n, 2)
        centers = np.nan_to_num(np.array(self.centers), nan=-1e9)
        seen = coverage(truth, centers, self.fov_px, self.world.radius_px)
        homes = np.array([s.center for s in sectors(self.n_agents, self.world.width, self.world.height)])
        static = coverage(truth, np.broadcast_to(homes, centers.shape), self.fov_px, self.world.radius_px)
        tracked = np.zeros(seen.shape, bool)
        for i, per_agent in enumerate(self.estimates):
            est = np.concatenate(per_agent).reshape(-1, 2)
            if len(est):
                d = np.hypot(*(truth[i][:, None, :] - est[None, :, :]).transpose(2, 0, 1))
                tracked[i] = (d <= tol_px).any(1)
        return {
            "samples": len(self.times),
            "coverage_pct": 100.0 * float(seen.mean()),
            "tracked_pct": 100.0 * float(tracked.mean()),
            "static_coverage_pct": 100.0 * float(static.mean()),
        }

    def to_json(self) -> str:
        """The log as JSON text: deterministic for a deterministic run."""
        doc = {
            "n_agents": self.n_agents,
            "fov_px": self.fov_px,
            "interval_us": self.interval_us,
            "world": {
                "seed": self.world.seed,
                "width": self.world.width,
                "height": self.world.height,
                "n_targets": self.world.n_targets,
            },
            "t_us": self.times,
            "centers": [_rounded(c) for c in self.centers],
            "tracks": [[_rounded(e) for e in per] for per in self.estimates],
            "notes": [[t, s] for t, s in self.notes],
        }
        return json.dumps(doc, separators=(",", ":"), allow_nan=True)

    @classmethod
    def from_json(cls, text: str, world: World | None = None) -> TrackLog:
        """Read a log written by `to_json` (the world is rebuilt from its seed and size unless given)."""
        doc = json.loads(text)
        w = doc["world"]
        world = world or World(seed=w["seed"], width=w["width"], height=w["height"], n_targets=w["n_targets"])
        log = cls(world, doc["n_agents"], doc["fov_px"], interval_us=doc["interval_us"])
        log.times = [int(t) for t in doc["t_us"]]
        log.centers = [np.array(c, np.float64).reshape(-1, 2) for c in doc["centers"]]
        log.estimates = [[np.array(e, np.float64).reshape(-1, 2) for e in per] for per in doc["tracks"]]
        log.notes = [(int(t), str(s)) for t, s in doc["notes"]]
        return log


def _rounded(a: np.ndarray) -> list[Any]:
    out: list[Any] = np.round(np.asarray(a, np.float64), 3).tolist()
    return out
