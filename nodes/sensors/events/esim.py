"""The DVS pixel model behind the synthetic camera: log-intensity threshold crossings (ESIM / v2e style)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dtypes import EVENT_DTYPE

__all__ = ["DvsParams", "DvsPixels", "lin_log"]

# v2e represents intensity in 8-bit DN and is linear below 20 DN, log above [SensorsINI/v2e v2ecore/emulator.py].
_LIN_LOG_DN = 20.0
_LOG_KNEE = float(np.log(_LIN_LOG_DN))
_SLOPE = np.float32(_LOG_KNEE / _LIN_LOG_DN)
#: How often the leak is folded into the references (µs); leak events are ~0.1 Hz, so 50 ms is fine-grained.
LEAK_UPDATE_US = 50_000


def _lin_log_dn(dn: np.ndarray) -> np.ndarray:
    return np.where(dn > _LIN_LOG_DN, np.log(np.maximum(dn, np.float32(_LIN_LOG_DN))), dn * _SLOPE)


def lin_log(intensity: np.ndarray) -> np.ndarray:
    """v2e's photoreceptor: ln(DN) above 20 DN, the continuous line through 0 below (DN = 255·intensity)."""
    return _lin_log_dn(np.asarray(intensity, np.float32) * np.float32(255.0)).astype(np.float32)


def _inv_lin_log(v: np.ndarray) -> np.ndarray:
    """DN whose lin_log is v (the inverse of `_lin_log_dn`)."""
    return np.where(v > _LOG_KNEE, np.exp(np.minimum(v, np.float32(30.0))), v / _SLOPE).astype(np.float32)


@dataclass(frozen=True)
class DvsParams:
    """Pixel parameters; defaults are v2e's [SensorsINI/v2e v2ecore/emulator.py, README.md; SCIENCE.md 2.4].

    c_on, c_off: contrast thresholds (ln units), 0.2. sigma: per-pixel threshold mismatch (std, ln
    units), 0.03. refractory_us: dead time after an event, 500 µs (v2e CLI default). leak_hz: leak
    events per pixel, 0.1 Hz. shot_noise_hz: random events per pixel, 0 in v2e's "clean" and 5 Hz in
    its "noisy" preset; 1 Hz here (our choice, between the two).
    """

    c_on: float = 0.2
    c_off: float = 0.2
    sigma: float = 0.03
    refractory_us: int = 500
    leak_hz: float = 0.1
    shot_noise_hz: float = 1.0


class DvsPixels:
    """A W×H array of DVS pixels driven by rendered intensity frames.

    Each pixel keeps the log intensity at its last event, L_ref. When the log intensity L moves by
    n·C past it, the pixel emits n events (ON for rises, OFF for falls) with times interpolated
    linearly between the two frames (ESIM, Rebecq et al. CoRL 2018), and L_ref moves by n·C. C is
    drawn once per pixel from N(c, σ). Events within `refractory_us` of a pixel's previous event are
    suppressed (their change stays pending in L_ref). Leak lowers L_ref by leak_hz·C per second
    (spontaneous ON events); shot noise adds Poisson events at random pixels, times and polarities.

    Example::

        px = DvsPixels(64, 64, DvsParams(), np.random.default_rng(0))
        px.reset(frame0, t_us=0)
        events = px.step(frame1, t_us=1000)      # EVENT_DTYPE, sorted by t, t in (0, 1000]
    """

    def __init__(self, width: int, height: int, params: DvsParams, rng: np.random.Generator) -> None:
        self.width, self.height, self.params, self.rng = int(width), int(height), params, rng
        n = self.width * self.height
        self.c_on = np.maximum(rng.normal(params.c_on, params.sigma, n), 0.01).astype(np.float32)
        self.c_off = np.maximum(rng.normal(params.c_off, params.sigma, n), 0.01).astype(np.float32)
        self.log_ref = np.zeros(n, np.float32)
        self.dn_prev = np.zeros(n, np.float32)
        self.last_us = np.full(n, np.iinfo(np.int64).min // 2, np.int64)
        self.t_us = 0
        self._leak_t = 0
        self.roi: tuple[int, int, int, int] | None = None
        self._update_thresholds()

    def _update_thresholds(self, pix: np.ndarray | None = None) -> None:
        # Crossing tests run in the linear DN domain (lin_log is monotonic), so only pixels that
        # cross need a logarithm: thresholds are the DN values at L_ref ± C.
        if pix is None:
            self.thr_hi = _inv_lin_log(self.log_ref + self.c_on)
            self.thr_lo = _inv_lin_log(self.log_ref - self.c_off)
        else:
            ref = self.log_ref[pix]
            both = _inv_lin_log(np.concatenate([ref + self.c_on[pix], ref - self.c_off[pix]]))
            self.thr_hi[pix] = both[: len(pix)]
            self.thr_lo[pix] = both[len(pix) :]

    def reset(self, frame: np.ndarray, t_us: int) -> None:
        """Start from `frame` at `t_us` with every pixel's reference at its current log intensity."""
        self.dn_prev = np.asarray(frame, np.float32).ravel() * np.float32(255.0)
        self.log_ref = _lin_log_dn(self.dn_prev).astype(np.float32)
        self.t_us = self._leak_t = int(t_us)
        self._update_thresholds()

    def step(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Advance to `frame` at `t_us` (> current time) and return the events in between, sorted by t."""
        return self.step_many(np.asarray(frame)[None], np.array([t_us]))

    def step_many(self, frames: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Advance through frames (T, H, W) at increasing times `t_us` (T,); events sorted by t.

        Per frame only the threshold test and the crossing pixels cost anything; events, noise and
        sorting are assembled once for the whole span.
        """
        ts = np.asarray(t_us, np.int64)
        if len(ts) == 0:
            return np.zeros(0, EVENT_DTYPE)
        if ts[0] <= self.t_us or (len(ts) > 1 and bool(np.any(np.diff(ts) <= 0))):
            raise ValueError(f"DvsPixels: frame times must increase past {self.t_us} µs, got {ts[:4]}…")
        p = self.params
        t_start = self.t_us
        out_t: list[np.ndarray] = []
        out_pix: list[np.ndarray] = []
        out_on: list[np.ndarray] = []
        for frame, t in zip(frames, ts.tolist(), strict=True):
            if p.leak_hz > 0 and t - self._leak_t >= LEAK_UPDATE_US:
                self.log_ref -= np.float32(p.leak_hz * (t - self._leak_t) * 1e-6) * self.c_on
                self._leak_t = t
                self._update_thresholds()
            dn = frame.reshape(-1) * np.float32(255.0)
            active = np.flatnonzero((dn >= self.thr_hi) | (dn <= self.thr_lo))
            if len(active):
                got = self._crossings(active, dn, self.t_us, t - self.t_us)
                if got is not None:
                    out_t.append(got[0])
                    out_pix.append(got[1])
                    out_on.append(got[2])
            self.dn_prev = dn
            self.t_us = t
        self._shot_noise(t_start, self.t_us - t_start, out_t, out_pix, out_on)
        if not out_t:
            return np.zeros(0, EVENT_DTYPE)
        tt = np.concatenate(out_t)
        pix = np.concatenate(out_pix)
        on = np.concatenate(out_on)
        if self.roi is not None:
            x0, y0, x1, y1 = self.roi
            x, y = pix % self.width, pix // self.width
            keep = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
            tt, pix, on = tt[keep], pix[keep], on[keep]
        order = np.argsort(tt, kind="stable")
        ev = np.empty(len(tt), EVENT_DTYPE)
        pix = pix[order]
        ev["t"] = tt[order]
        ev["x"] = pix % self.width
        ev["y"] = pix // self.width
        ev["p"] = on[order]
        return ev

    def _crossings(
        self, pix: np.ndarray, dn: np.ndarray, t_prev: int, dt: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        m = len(pix)
        logs = _lin_log_dn(np.concatenate([dn[pix], self.dn_prev[pix]]))  # one call for both frames
        log_new, log_old = logs[:m], logs[m:]
        ref = self.log_ref[pix]
        diff = log_new - ref
        on = diff > 0
        c = np.where(on, self.c_on[pix], -self.c_off[pix])
        n = (diff / c).astype(np.int64)  # ≥ 0, so truncation is floor
        ok = n >= 1  # guards float rounding at the threshold
        if not bool(ok.all()):
            pix, n, on, c, ref, log_new, log_old = (
                pix[ok],
                n[ok],
                on[ok],
                c[ok],
                ref[ok],
                log_new[ok],
                log_old[ok],
            )
            if not len(pix):
                return None
        total = int(n.sum())
        single = total == len(pix)  # the common case at millisecond frames: one crossing per pixel
        if single:
            owner = None
            level, l0, span = ref + c, log_old, log_new - log_old
        else:
            starts = np.cumsum(n) - n
            owner = np.repeat(np.arange(len(pix)), n)
            k = np.arange(1, total + 1) - starts[owner]  # crossing number 1..n within each pixel
            level = ref[owner] + k * c[owner]
            l0 = log_old[owner]
            span = log_new[owner] - l0
        moving = np.abs(span) > 1e-9
        frac = np.where(moving, (level - l0) / np.where(moving, span, 1.0), 1.0)
        # ceil keeps t > t_prev; the 1e-3 µs slack absorbs float error at exact crossings.
        step = np.ceil(np.minimum(np.maximum(frac, 0.0), 1.0) * dt - 1e-3)
        t = t_prev + np.minimum(np.maximum(step, 1), dt).astype(np.int64)
        # Refractory: a crossing may fire only `refractory_us` after the pixel's previous event.
        # Crossings within a step are evenly spaced, so the greedy rule keeps every m-th eligible one.
        refr = self.params.refractory_us
        last = self.last_us[pix]
        if single:
            keep = t >= last + refr if refr > 0 else None
            if keep is not None and not bool(keep.all()):
                idx = np.flatnonzero(keep)
                pix, c, on, t = pix[idx], c[idx], on[idx], t[idx]
            self.log_ref[pix] += c
            self._update_thresholds(pix)
            self.last_us[pix] = t  # pixels are unique here
            return t, pix, on
        assert owner is not None
        if refr > 0:
            keep = t >= last[owner] + refr
            spacing = dt * np.abs(c) / np.maximum(np.abs(log_new - log_old), 1e-9)  # µs between crossings
            every = np.maximum(np.ceil(refr / spacing), 1).astype(np.int64)[owner]
            csum = np.cumsum(keep)
            before = (csum - keep)[starts][owner]  # eligible crossings before this pixel's first
            keep &= ((csum - before - 1) % every) == 0
            owner, t = owner[keep], t[keep]
        kept = np.bincount(owner, minlength=len(pix))
        self.log_ref[pix] += kept * c
        self._update_thresholds(pix)
        flat = pix[owner]
        np.maximum.at(self.last_us, flat, t)
        return t, flat, on[owner]

    def _shot_noise(
        self,
        t_prev: int,
        dt: int,
        out_t: list[np.ndarray],
        out_pix: list[np.ndarray],
        out_on: list[np.ndarray],
    ) -> None:
        rate = self.params.shot_noise_hz
        if rate <= 0 or dt <= 0:
            return
        x0, y0, x1, y1 = self.roi if self.roi is not None else (0, 0, self.width, self.height)
        area = max(0, x1 - x0) * max(0, y1 - y0)
        n = int(self.rng.poisson(rate * area * dt * 1e-6))
        if n:
            out_t.append(t_prev + self.rng.integers(1, dt + 1, n))
            x = self.rng.integers(x0, x1, n)
            out_pix.append(self.rng.integers(y0, y1, n) * self.width + x)
            out_on.append(self.rng.integers(0, 2, n).astype(bool))
