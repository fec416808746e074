"""Flow tracking: sensor-to-action latency per path, with late / too-late classes against the graph's deadline.

Every message carries the sensing time and the topic that sensed it (`origin`) through the loop, so a
leaf node (an actuator, a sink) can tell how old the data behind its input is, per path
`origin → node/input` (Holoscan's flow tracking; iRobot's late and too-late classes, SCIENCE.md 1.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .qos import LatencyReservoir

__all__ = ["PathStats", "FlowTracker"]


@dataclass
class PathStats:
    """One path's counts (`too_late` ones are also `late`) and its recent latencies."""

    count: int = 0
    late: int = 0
    too_late: int = 0
    latency: LatencyReservoir = field(default_factory=LatencyReservoir)


class FlowTracker:
    """Counts per path. `deadline_ms` makes a message late; `too_late_ms` (default 5× the deadline, the
    ratio of iRobot's 0.2·period and period thresholds) makes it too late."""

    def __init__(self, deadline_ms: float | None, too_late_ms: float | None = None) -> None:
        self.late_ns = int(deadline_ms * 1e6) if deadline_ms else None
        too = too_late_ms if too_late_ms else (5 * deadline_ms if deadline_ms else None)
        self.too_late_ns = int(too * 1e6) if too else None
        self.paths: dict[str, PathStats] = {}

    def observe(self, origin: str, node: str, port: str, latency_ns: int) -> None:
        key = f"{origin} → {node}/{port}"
        p = self.paths.get(key)
        if p is None:
            p = self.paths[key] = PathStats()
        p.count += 1
        p.latency.add(latency_ns)
        if self.late_ns is not None and latency_ns > self.late_ns:
            p.late += 1
            if self.too_late_ns is not None and latency_ns > self.too_late_ns:
                p.too_late += 1

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, p in self.paths.items():
            p50, p99, _ = p.latency.percentiles_us()
            out[key] = {
                "count": p.count,
                "late": p.late,
                "too_late": p.too_late,
                "p50_us": p50,
                "p99_us": p99,
                "max_us": p.latency.max_ns / 1000.0,
                "deadline_ms": None if self.late_ns is None else self.late_ns / 1e6,
            }
        return out
