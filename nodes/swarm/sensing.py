"""Action-to-sensing: which region the camera reads out next, chosen from the tracker's predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tracking import Track

__all__ = ["SensingConfig", "SensingPolicy", "OFF", "is_off"]

Roi = tuple[int, int, int, int]
#: An empty region: read nothing out this batch (the pixels still integrate light).
OFF: Roi = (0, 0, 0, 0)


def is_off(roi: Roi | None) -> bool:
    """True for an empty region (nothing read out); None is the full frame."""
    return roi is not None and (roi[2] <= roi[0] or roi[3] <= roi[1])


@dataclass(frozen=True)
class SensingConfig:
    """How an agent senses. `mode` 'full' reads the whole sensor every batch (the baseline); 'roi'
    reads at most one small box per batch: around the track that most needs a look, else a border
    strip every `strip_every` batches (every new target enters the view across its border), else
    nothing; and a full frame every `scan_every` batches to catch anything the strips missed."""

    mode: str = "roi"
    fov_px: int = 64
    scan_every: int = 20
    revisit: int = 3
    sigma_px: float = 1.0
    margin_px: float = 4.0
    strip_px: int = 10
    strip_every: int = 4
    radius_px: float = 4.0

    def __post_init__(self) -> None:
        if self.mode not in ("roi", "full"):
            raise ValueError(f"sensing mode must be 'roi' or 'full', got {self.mode!r}")
        if min(self.scan_every, self.revisit, self.strip_every) < 1:
            raise ValueError("scan_every, revisit and strip_every must be ≥ 1")


class SensingPolicy:
    """Chooses the next batch's region of interest (sensor px, half-open) or None for the full frame.

    Priority each batch: a full frame every `scan_every` batches; else the tentative track with the
    largest uncertainty (it needs a second look to be confirmed); else the confirmed track sensed
    longest ago if `revisit` batches have passed or its position σ exceeds `sigma_px`; else, every
    `strip_every`-th idle batch, the next of the four border strips; else nothing (`OFF`). Between
    looks a track is predicted at constant velocity.

    Example::

        pol = SensingPolicy(SensingConfig())
        roi = pol.choose(tracker.tracks, t_mid_us, origin_xy, period_us=10_000)  # (x0, y0, x1, y1) or None
    """

    def __init__(self, cfg: SensingConfig) -> None:
        self.cfg = cfg
        self.k = 0
        self._strip = 0
        self._idle = 0

    def _box(self, tr: Track, t_us: int, origin: np.ndarray, period_us: int) -> Roi | None:
        c = self.cfg
        x, y = tr.predicted(t_us) - origin
        speed = float(np.hypot(*tr.x[2:]))
        half = c.radius_px + c.margin_px + 2 * tr.sigma_px + speed * period_us * 0.5e-6
        x0, y0 = max(0, int(np.floor(x - half))), max(0, int(np.floor(y - half)))
        x1, y1 = min(c.fov_px, int(np.ceil(x + half))), min(c.fov_px, int(np.ceil(y + half)))
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def _strip_box(self) -> Roi:
        f, s = self.cfg.fov_px, self.cfg.strip_px
        self._strip = (self._strip + 1) % 4
        return ((0, 0, f, s), (f - s, 0, f, f), (0, f - s, f, f), (0, 0, s, f))[self._strip]

    def choose(self, tracks: list[Track], t_mid_us: int, origin: np.ndarray, period_us: int) -> Roi | None:
        """The region to read out for the batch centred on `t_mid_us`, the view's corner at `origin`."""
        c = self.cfg
        self.k += 1
        if c.mode == "full" or self.k % c.scan_every == 1:
            return None
        # A confirmed track is looked at only when well inside the view (near the border it would
        # be cut); a tentative one whenever it is in view, to confirm it as early as possible.
        e = c.radius_px + 1
        seen, tentative = [], []
        for tr in tracks:
            lx, ly = tr.predicted(t_mid_us) - origin
            if not (0 <= lx < c.fov_px and 0 <= ly < c.fov_px):
                continue
            if not tr.confirmed:
                tentative.append(tr)
            elif e <= lx <= c.fov_px - e and e <= ly <= c.fov_px - e:
                seen.append(tr)
        pick: Track | None
        if tentative:
            pick = max(tentative, key=lambda t: (t.sigma_px, -t.id))
        else:
            due = [
                t
                for t in seen
                if t_mid_us - t.last_sensed_us >= c.revisit * period_us or t.sigma_px > c.sigma_px
            ]
            pick = min(due, key=lambda t: (t.last_sensed_us, t.id)) if due else None
        if pick is not None:
            box = self._box(pick, t_mid_us, origin, period_us)
            if box is not None:
                return box
        self._idle += 1
        return self._strip_box() if self._idle % c.strip_every == 0 else OFF
