"""One swarm agent's decisions: track, share, hand off, steer and choose what to sense next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .sensing import Roi, SensingConfig, SensingPolicy, is_off
from .tracking import Track, Tracker
from .world import World, fov_box, sectors

__all__ = ["BrainConfig", "Decision", "AgentBrain", "agent_name"]


def agent_name(index: int) -> str:
    """Agents are numbered from 0 in code and named a1, a2, … for people."""
    return f"a{index + 1}"


@dataclass(frozen=True)
class BrainConfig:
    """An agent's behaviour. Speeds in px/s, times in µs unless named otherwise."""

    agent: int = 0
    n_agents: int = 4
    fov_px: int = 64
    period_us: int = 10_000
    idle_period_us: int = 20_000
    max_speed_px_s: float = 40.0
    gain_per_s: float = 2.0
    lookahead_s: float = 0.3
    patrol_period_s: float = 8.0
    handoff_repeat: int = 5
    handoff_margin_px: float = 4.0
    sensing: SensingConfig = field(default_factory=SensingConfig)


@dataclass
class Decision:
    """What the agent does after one batch: the next ROI (sensor px, None = full frame), the next
    batch period, a velocity command (px/s), the message it shares with its peers, log lines."""

    roi: Roi | None
    period_us: int
    velocity: np.ndarray
    share: dict[str, Any]
    notes: list[str]


class AgentBrain:
    """Tracks targets in world px, shares confirmed tracks, hands off targets leaving its sector,
    steers its camera toward the targets of its sector (its own or reported by peers), and picks the
    next region to sense (action-to-sensing, `SensingPolicy`).

    Example::

        brain = AgentBrain(World(seed=1), BrainConfig(agent=0))
        d = brain.step(dets_local, t0_us, t1_us, origin=np.array([0.0, 0.0]), roi=None)
        brain.on_peer(share_from_peer)
    """

    def __init__(self, world: World, cfg: BrainConfig) -> None:
        if not 0 <= cfg.agent < cfg.n_agents:
            raise ValueError(f"agent index {cfg.agent} is outside 0..{cfg.n_agents - 1}")
        self.world, self.cfg = world, cfg
        self.sectors = sectors(cfg.n_agents, world.width, world.height)
        self.sector = self.sectors[cfg.agent]
        r = world.radius_px
        self.tracker = Tracker(
            id_base=cfg.agent * 1_000_000, bounds=(r, r, world.width - r, world.height - r), edge_px=r + 1.0
        )
        self.sensing = SensingPolicy(cfg.sensing)
        self.t_us = 0
        self.counts: dict[str, int] = {
            k: 0 for k in ("handoffs_out", "handoffs_in", "handoffs_ok", "handoffs_lost")
        }
        self._outbox: list[tuple[int, list[float]]] = []  # (repeats left, handoff row)
        self._pending: dict[int, tuple[int, int]] = {}  # track id -> (from agent, t received)
        self._seen_handoffs: dict[tuple[int, int], int] = {}
        self._seq = 0
        self._rejected: list[tuple[np.ndarray, int]] = []
        self._velocity = np.zeros(2)

    @property
    def home(self) -> np.ndarray:
        return np.array(self.sector.center)

    # ----- own sensing -----
    def step(
        self,
        dets: np.ndarray,
        t0_us: int,
        t1_us: int,
        origin: np.ndarray,
        roi: Roi | None,
        camera_v: np.ndarray | None = None,
    ) -> Decision:
        """Fold in one batch's detections (k, ≥2) in sensor px, sensed over `roi` (None = full frame, `OFF` = nothing)
        while the camera moved at `camera_v` px/s (by default the velocity this agent last commanded)."""
        f = self.cfg.fov_px
        origin = np.asarray(origin, np.float64)
        ox, oy = float(origin[0]), float(origin[1])
        sensed: tuple[float, float, float, float] | None = (ox, oy, ox + f, oy + f)
        if is_off(roi):
            sensed = None
        elif roi is not None:
            sensed = (ox + roi[0], oy + roi[1], ox + roi[2], oy + roi[3])
        world_dets = np.asarray(dets, np.float64).reshape(-1, 3)[:, :2] + origin
        cam_v = self._velocity if camera_v is None else np.asarray(camera_v, np.float64)
        self.tracker.update(world_dets, (t0_us + t1_us) // 2, sensed, camera_v=cam_v)
        self.tracker.predict(t1_us)
        # Where a peer's hint was looked at and not found, do not take the same hint again at once.
        self._rejected = [(xy, t) for xy, t in self._rejected if t1_us - t < 500_000]
        self._rejected += [
            (tr.pos.copy(), t1_us) for tr in self.tracker.dropped if tr.origin == "peer" and not tr.confirmed
        ]
        self.t_us = t1_us
        notes = self._settle_handoffs(t1_us) + self._hand_off(t1_us)
        center = origin + f / 2.0
        velocity = self._velocity = self._steer(center, t1_us)
        in_view = [t for t in self.tracker.tracks if _inside(t.pos, fov_box(center, f))]
        period = self.cfg.period_us if in_view else self.cfg.idle_period_us
        next_origin = origin + velocity * period * 1e-6
        next_roi = self.sensing.choose(self.tracker.tracks, t1_us + period // 2, next_origin, period)
        return Decision(next_roi, period, velocity, self._share(t1_us, center), notes)

    def confirmed(self) -> list[Track]:
        return [t for t in self.tracker.tracks if t.confirmed]

    def _settle_handoffs(self, t_us: int) -> list[str]:
        notes = []
        alive = {t.id: t for t in self.tracker.tracks}
        for tid, (src, t_in) in list(self._pending.items()):
            tr = alive.get(tid)
            if tr is not None and tr.confirmed:
                self.counts["handoffs_ok"] += 1
                notes.append(
                    f"handoff {agent_name(src)} → {agent_name(self.cfg.agent)}: target at "
                    f"({tr.pos[0]:.0f}, {tr.pos[1]:.0f}) acquired {(t_us - t_in) / 1000:.0f} ms after the handoff"
                )
                del self._pending[tid]
            elif tr is None:
                self.counts["handoffs_lost"] += 1
                notes.append(f"handoff {agent_name(src)} → {agent_name(self.cfg.agent)}: target not found")
                del self._pending[tid]
        return notes

    def _hand_off(self, t_us: int) -> list[str]:
        notes = []
        conf = self.confirmed()
        for tr in conf:
            owner = self._owner(tr.pos)
            if owner < 0:
                continue  # on a border: wait until it is clearly on one side (no handoff ping-pong)
            if owner == self.cfg.agent:
                tr.handed_to = -1
            elif owner >= 0 and tr.handed_to != owner:
                tr.handed_to = owner
                self.counts["handoffs_out"] += 1
                row = [float(tr.id), float(owner), *map(float, tr.x)]
                self._outbox.append((self.cfg.handoff_repeat, row))
                notes.append(
                    f"handoff {agent_name(self.cfg.agent)} → {agent_name(owner)}: target at "
                    f"({tr.pos[0]:.0f}, {tr.pos[1]:.0f}) moving ({tr.x[2]:.0f}, {tr.x[3]:.0f}) px/s"
                )
        return notes

    def _owner(self, xy: np.ndarray) -> int:
        """The sector clearly holding `xy`: at least `handoff_margin_px` inside its borders with other
        sectors (the world's walls need no margin); −1 in the band along a border."""
        m = self.cfg.handoff_margin_px
        w, h = self.world.width, self.world.height
        x, y = float(xy[0]), float(xy[1])
        for s in self.sectors:
            if (s.x0 + m if s.x0 > 0 else s.x0) <= x < (s.x1 - m if s.x1 < w else s.x1 + 1) and (
                s.y0 + m if s.y0 > 0 else s.y0
            ) <= y < (s.y1 - m if s.y1 < h else s.y1 + 1):
                return s.index
        return -1

    def _goal(self, center: np.ndarray, t_us: int) -> np.ndarray:
        t_ahead = t_us + int(self.cfg.lookahead_s * 1e6)
        pts = np.array([t.predicted(t_ahead) for t in self.tracker.tracks]).reshape(-1, 2)
        mine = pts[self.sector.contains(pts)] if len(pts) else pts
        if not len(mine):
            # Nothing to follow: patrol a circle around the sector centre to look for targets.
            s = self.sector
            r = min(s.x1 - s.x0, s.y1 - s.y0) / 4.0
            a = 2 * np.pi * (t_us * 1e-6) / self.cfg.patrol_period_s + self.cfg.agent * np.pi / 2
            return np.array(s.center) + r * np.array([np.cos(a), np.sin(a)])
        # Centre on the targets that fit in one view with the one nearest to us.
        near = mine[np.argsort(np.hypot(*(mine - center).T), kind="stable")]
        span = self.cfg.fov_px - 4 * self.world.radius_px
        group = near[np.all(np.abs(near - near[0]) <= span, axis=1)]
        out: np.ndarray = (group.min(0) + group.max(0)) / 2.0
        return out

    def _steer(self, center: np.ndarray, t_us: int) -> np.ndarray:
        s = self.sector
        goal = self._goal(center, t_us)
        goal = np.clip(goal, [s.x0, s.y0], [s.x1, s.y1])
        v = self.cfg.gain_per_s * (goal - center)
        speed = float(np.hypot(*v))
        if speed > self.cfg.max_speed_px_s:
            v *= self.cfg.max_speed_px_s / max(speed, 1e-9)
        out: np.ndarray = v
        return out

    def _share(self, t_us: int, center: np.ndarray) -> dict[str, Any]:
        conf = self.confirmed()
        rows = np.array([[t.id, *t.x, t.sigma_px] for t in conf], np.float64).reshape(-1, 6)
        self._outbox = [(n - 1, r) for n, r in self._outbox if n > 0]
        handoffs = np.array([r for _, r in self._outbox], np.float64).reshape(-1, 6)
        self._seq += 1
        return {
            "agent": self.cfg.agent,
            "t_us": int(t_us),
            "seq": self._seq,
            "center": [float(center[0]), float(center[1])],
            "tracks": rows,
            "handoffs": handoffs,
            "final": False,
        }

    # ----- peers -----
    def on_peer(self, share: dict[str, Any]) -> list[str]:
        """Fold in a peer's shared tracks and handoffs (payload of `Decision.share`)."""
        peer = int(share["agent"])
        if peer == self.cfg.agent:
            return []
        now = self.t_us
        dt = (now - int(share["t_us"])) * 1e-6
        gate = self.tracker.gate
        tracks = np.asarray(share["tracks"], np.float64).reshape(-1, 6)
        for row in tracks:
            xy = row[1:3] + row[3:5] * dt
            if not self.sector.contains(xy):
                continue
            tr = self.tracker.nearest(xy, now, gate)
            if tr is None and any(float(np.hypot(*(xy - p))) < gate for p, _ in self._rejected):
                continue
            if tr is None:
                self.tracker.spawn(
                    xy,
                    now,
                    v=row[3:5],
                    sigma_px=max(1.0, row[5]),
                    sigma_v=5.0,
                    origin="peer",
                    source_agent=peer,
                )
            elif not tr.confirmed:  # a hint we have not seen ourselves yet: keep it fresh
                self._refresh(tr, xy, row[3:5], now)
        notes = []
        for row in np.asarray(share["handoffs"], np.float64).reshape(-1, 6):
            if int(row[1]) != self.cfg.agent or (peer, int(row[0])) in self._seen_handoffs:
                continue
            self._seen_handoffs[(peer, int(row[0]))] = now
            self.counts["handoffs_in"] += 1
            xy = row[2:4] + row[4:6] * dt
            tr = self.tracker.nearest(xy, now, gate)
            if tr is not None and tr.confirmed:
                self.counts["handoffs_ok"] += 1
                notes.append(
                    f"handoff {agent_name(peer)} → {agent_name(self.cfg.agent)}: target at "
                    f"({xy[0]:.0f}, {xy[1]:.0f}) already tracked"
                )
                continue
            if tr is None:
                tr = self.tracker.spawn(
                    xy, now, v=row[4:6], sigma_px=1.5, sigma_v=5.0, origin="handoff", source_agent=peer
                )
            else:
                self._refresh(tr, xy, row[4:6], now)
                tr.origin, tr.source_agent = "handoff", peer
            self._pending[tr.id] = (peer, now)
        self._seen_handoffs = {k: t for k, t in self._seen_handoffs.items() if now - t < 10_000_000}
        return notes

    def _refresh(self, tr: Track, xy: np.ndarray, v: np.ndarray, t_us: int) -> None:
        tr.x = np.array([xy[0], xy[1], v[0], v[1]])
        tr.t_us = tr.last_seen_us = t_us


def _inside(xy: np.ndarray, box: tuple[float, float, float, float], pad: float = 0.0) -> bool:
    return bool(box[0] - pad <= xy[0] < box[2] + pad and box[1] - pad <= xy[1] < box[3] + pad)
