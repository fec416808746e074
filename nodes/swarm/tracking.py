"""Constant-velocity Kalman tracking of detected targets, predicting them while they are not sensed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Track", "Tracker"]


@dataclass
class Track:
    """One tracked target in world px: state [x, y, vx, vy] (px, px/s), covariance P (4×4), at `t_us`.

    `origin` says how it was born: 'own' (this agent's detection), 'peer' (a peer reported a target
    in this agent's sector) or 'handoff' (a peer handed it over). It counts as this agent's estimate
    only once `confirmed` by `confirm_hits` of its own detections.
    """

    id: int
    x: np.ndarray
    P: np.ndarray
    t_us: int
    born_us: int
    last_seen_us: int
    hits: int = 0
    misses: int = 0
    confirmed: bool = False
    origin: str = "own"
    source_agent: int = -1
    handed_to: int = -1
    last_sensed_us: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def pos(self) -> np.ndarray:
        return self.x[:2]

    @property
    def sigma_px(self) -> float:
        """Position uncertainty: the RMS of the two position standard deviations (px)."""
        return float(np.sqrt(0.5 * (self.P[0, 0] + self.P[1, 1])))

    def predicted(self, t_us: int) -> np.ndarray:
        """Position (2,) extrapolated to `t_us` at constant velocity (the state is not changed; no walls)."""
        out: np.ndarray = self.x[:2] + self.x[2:] * (t_us - self.t_us) * 1e-6
        return out


class Tracker:
    """Tracks targets from point detections with one constant-velocity Kalman filter per target.

    Model per axis: x' = x + v·dt, v' = v + a·dt with white acceleration a of spread `accel_px_s2`
    (Q = σa²·[[dt⁴/4, dt³/2], [dt³/2, dt²]]), measurement noise `meas_px`. Detections are matched to
    predictions greedily by distance within a gate of max(`gate_px`, 3σ). A track misses only when
    it was predicted inside the sensed region, so it coasts on prediction while outside the ROI;
    it is dropped after `max_misses` misses in a row or `coast_us` without a detection. With
    `bounds` (x0, y0, x1, y1), predictions bounce off those walls as the targets do.

    Example::

        tr = Tracker()
        tr.update(np.array([[10.0, 12.0]]), t_us=10_000, sensed=None)
        tr.update(np.array([[10.3, 12.0]]), t_us=20_000, sensed=None)
        [t.confirmed for t in tr.tracks]        # [True]
    """

    def __init__(
        self,
        *,
        accel_px_s2: float = 60.0,
        meas_px: float = 0.7,
        gate_px: float = 8.0,
        confirm_hits: int = 2,
        max_misses: int = 4,
        coast_us: int = 1_500_000,
        edge_px: float = 5.0,
        maneuver_px: float = 1.5,
        max_dv_px_s: float = 40.0,
        still_px_s: float = 8.0,
        max_speed_px_s: float = 60.0,
        merge_px: float = 2.5,
        bounds: tuple[float, float, float, float] | None = None,
        id_base: int = 0,
    ) -> None:
        self.accel, self.meas, self.gate, self.edge_px = (
            float(accel_px_s2),
            float(meas_px),
            float(gate_px),
            edge_px,
        )
        self.confirm_hits, self.max_misses, self.coast_us = confirm_hits, max_misses, coast_us
        self.maneuver_px, self.max_dv, self.still_px_s = maneuver_px, max_dv_px_s, still_px_s
        self.max_speed, self.merge_px = max_speed_px_s, merge_px
        self.bounds = None if bounds is None else np.asarray(bounds, np.float64)
        #: Tracks dropped by the last `update` (for callers that remember where nothing was found).
        self.dropped: list[Track] = []
        self.tracks: list[Track] = []
        self._next_id = id_base

    # ----- model -----
    # The model is separable: x and y evolve and are measured independently, so each axis is a
    # 2-state filter [p, v] and P stays block-diagonal. Scalar code: ~10× faster than 4×4 numpy here.
    def _predict(self, tr: Track, t_us: int) -> None:
        dt = (t_us - tr.t_us) * 1e-6
        if dt <= 0:
            return
        a2 = self.accel * self.accel
        x, p = tr.x.tolist(), tr.P.tolist()
        for i, j in ((0, 2), (1, 3)):
            pii, pij, pjj = p[i][i], p[i][j], p[j][j]
            p[i][i] = pii + 2 * dt * pij + dt * dt * pjj + a2 * dt**4 / 4
            p[i][j] = p[j][i] = pij + dt * pjj + a2 * dt**3 / 2
            p[j][j] = pjj + a2 * dt * dt
            x[i] += dt * x[j]
            if self.bounds is not None:  # targets bounce off the world's walls: so do predictions
                lo, hi = float(self.bounds[i]), float(self.bounds[i + 2])
                if x[i] < lo or x[i] > hi:
                    x[i] = 2 * (lo if x[i] < lo else hi) - x[i]
                    x[j] = -x[j]
        tr.x, tr.P, tr.t_us = np.array(x), np.array(p), t_us

    def _correct(self, tr: Track, z: np.ndarray, t_us: int, meas_px: float) -> None:
        x, p = tr.x.tolist(), tr.P.tolist()
        resid = (float(z[0]) - x[0], float(z[1]) - x[1])
        miss = math.hypot(*resid)
        dv2 = 0.0
        if miss > self.maneuver_px + meas_px - self.meas:
            # A turn or a bounce: the prediction is off by more than noise explains. Widen the
            # velocity's uncertainty so this and the next looks pull the track over quickly.
            dv2 = min((miss / max((t_us - tr.last_seen_us) * 1e-6, 0.05)) ** 2, self.max_dv**2)
        r2 = meas_px * meas_px
        for a, (i, j) in enumerate(((0, 2), (1, 3))):
            p[j][j] += dv2
            pii, pij, pjj = p[i][i], p[i][j], p[j][j]
            s = pii + r2
            ki, kj = pii / s, pij / s
            x[i] += ki * resid[a]
            x[j] += kj * resid[a]
            p[i][i], p[i][j], p[j][j] = (1 - ki) * pii, (1 - ki) * pij, pjj - kj * pij
            p[j][i] = p[i][j]
        speed = math.hypot(x[2], x[3])
        if speed > self.max_speed:  # no target moves that fast: a swapped or cut detection did that
            x[2] *= self.max_speed / speed
            x[3] *= self.max_speed / speed
        tr.x, tr.P = np.array(x), np.array(p)

    def predict(self, t_us: int) -> None:
        """Advance every track to `t_us`."""
        for tr in self.tracks:
            self._predict(tr, t_us)

    # ----- tracks -----
    def spawn(
        self,
        xy: np.ndarray,
        t_us: int,
        *,
        v: np.ndarray | None = None,
        sigma_px: float = 2.0,
        sigma_v: float = 30.0,
        origin: str = "own",
        source_agent: int = -1,
    ) -> Track:
        """Start a track at `xy` (with velocity `v` if known, e.g. from a peer)."""
        x = np.array([xy[0], xy[1], 0.0, 0.0]) if v is None else np.array([xy[0], xy[1], v[0], v[1]])
        p = np.diag([sigma_px**2, sigma_px**2, sigma_v**2, sigma_v**2])
        tr = Track(
            self._next_id,
            x,
            p,
            t_us,
            t_us,
            t_us,
            origin=origin,
            source_agent=source_agent,
            last_sensed_us=t_us,
        )
        self._next_id += 1
        self.tracks.append(tr)
        return tr

    def nearest(self, xy: np.ndarray, t_us: int, within_px: float) -> Track | None:
        """The track whose prediction at `t_us` is closest to `xy`, if within `within_px`."""
        best, best_d = None, within_px
        for tr in self.tracks:
            d = float(np.hypot(*(tr.predicted(t_us) - xy)))
            if d <= best_d:
                best, best_d = tr, d
        return best

    def update(
        self,
        dets: np.ndarray,
        t_us: int,
        sensed: tuple[float, float, float, float] | None,
        *,
        camera_v: np.ndarray | None = None,
    ) -> list[Track]:
        """Fold in detections `dets` (k, ≥2) world px made at `t_us` over the `sensed` box (None: nothing
        was sensed). Returns the tracks born from these detections.

        A detection within `edge_px` of the sensed box's border may be a target cut by the box, whose
        events' mean is pulled inward: it corrects its track with the larger noise `edge_px`/2 and
        can start a tentative track, but never counts toward confirming one. An event camera sees only what moves across it: a track moving
        confirmed slower than `still_px_s` relative to the camera (velocity `camera_v`, px/s) is not
        missed when no events come from it.
        """
        self.predict(t_us)
        dets = np.asarray(dets, np.float64)
        dets = dets.reshape(-1, dets.shape[-1] if dets.ndim == 2 else 2)
        partial = np.zeros(len(dets), bool)
        if sensed is not None and len(dets):
            x0, y0, x1, y1 = sensed
            e = self.edge_px
            partial = (
                (dets[:, 0] < x0 + e) | (dets[:, 0] > x1 - e) | (dets[:, 1] < y0 + e) | (dets[:, 1] > y1 - e)
            )
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if len(self.tracks) and len(dets):
            pos = np.array([tr.pos for tr in self.tracks])
            d = np.hypot(pos[:, None, 0] - dets[None, :, 0], pos[:, None, 1] - dets[None, :, 1])
            gates = np.array([max(self.gate, 3 * tr.sigma_px) for tr in self.tracks])
            for flat in np.argsort(d, axis=None, kind="stable"):
                i, j = divmod(int(flat), len(dets))
                if d[i, j] > gates[i] or i in matched_t or j in matched_d:
                    continue
                matched_t.add(i)
                matched_d.add(j)
                tr = self.tracks[i]
                tr.misses = 0
                self._correct(tr, dets[j, :2], t_us, self.edge_px / 2 if partial[j] else self.meas)
                tr.last_seen_us = t_us
                if not partial[j]:
                    tr.hits += 1
                    tr.confirmed = tr.confirmed or tr.hits >= self.confirm_hits
        for i, tr in enumerate(self.tracks):
            if sensed is not None:
                # Only a confirmed track well inside the sensed box was really looked at (and can be
                # missed); a tentative one is missed by any look that covered it and found nothing.
                x0, y0, x1, y1 = sensed
                px, py = tr.pos
                e = self.edge_px if tr.confirmed else 1.0
                if x0 + e <= px <= x1 - e and y0 + e <= py <= y1 - e:
                    tr.last_sensed_us = t_us
                    rel = tr.x[2:] - (0.0 if camera_v is None else camera_v)
                    if i not in matched_t and (not tr.confirmed or float(np.hypot(*rel)) >= self.still_px_s):
                        tr.misses += 1
        born = [self.spawn(dets[j, :2], t_us) for j in range(len(dets)) if j not in matched_d]
        for tr, j in zip(born, [j for j in range(len(dets)) if j not in matched_d], strict=True):
            tr.hits = 0 if partial[j] else 1  # a whole detection is the first of `confirm_hits`
        self.dropped = [tr for tr in self.tracks if not self._alive(tr, t_us)]
        self.tracks = [tr for tr in self.tracks if self._alive(tr, t_us)]
        self._merge()
        return born

    def _merge(self) -> None:
        """Two tracks closer than `merge_px` follow one target: keep the better established one."""
        order = sorted(self.tracks, key=lambda t: (not t.confirmed, -t.hits, t.id))
        kept: list[Track] = []
        for tr in order:
            if all(float(np.hypot(*(tr.pos - k.pos))) > self.merge_px for k in kept):
                kept.append(tr)
            else:
                self.dropped.append(tr)
        if len(kept) < len(self.tracks):
            self.tracks = sorted(kept, key=lambda t: t.id)

    def _alive(self, tr: Track, t_us: int) -> bool:
        if tr.confirmed:
            return tr.misses < self.max_misses and t_us - tr.last_seen_us <= self.coast_us
        # A tentative track is a guess: two misses or a short silence end it.
        return tr.misses < 2 and t_us - tr.last_seen_us <= min(self.coast_us, 400_000)
