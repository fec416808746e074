"""Cut a time-sorted stream of event segments into batches by time window or by event count."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .aedat_io import EMPTY_AEDAT_IMU, IMU_DTYPE, TRIGGER_DTYPE, Segment
from .dtypes import EVENT_DTYPE, concat_records

__all__ = ["Batch", "EventBatcher"]


@dataclass
class Batch:
    """Events in [t0_us, t1_us), plus the auxiliary samples that arrived up to t1_us."""

    events: np.ndarray
    t0_us: int
    t1_us: int
    imus: np.ndarray = field(default_factory=lambda: np.zeros(0, IMU_DTYPE))
    triggers: np.ndarray = field(default_factory=lambda: np.zeros(0, TRIGGER_DTYPE))
    frames: list[dict[str, Any]] = field(default_factory=list)
    #: The same IMU samples as stored in the file (g, °/s), for lossless rewriting.
    imus_raw: np.ndarray | None = None


class _Aux:
    """Pending samples of one auxiliary stream (IMU, triggers), cut at the batches' end times."""

    def __init__(self, dtype: np.dtype) -> None:
        self.empty = np.zeros(0, dtype)
        self.buf = self.empty
        self.floor: int | None = None  # samples before the replay's start are dropped

    def add(self, arr: np.ndarray) -> None:
        if len(arr):
            if self.floor is not None:
                arr = arr[np.searchsorted(arr["t"], self.floor, "left") :]
            self.buf = concat_records([self.buf, arr]) if len(self.buf) else arr

    def set_floor(self, floor: int) -> None:
        self.floor = floor
        if len(self.buf):
            self.buf = self.buf[np.searchsorted(self.buf["t"], floor, "left") :]

    def cuts(self, ends: np.ndarray) -> np.ndarray | None:
        """Index of the first sample at or after each end time (one searchsorted for a whole plan)."""
        return np.searchsorted(np.ascontiguousarray(self.buf["t"]), ends, "left") if len(self.buf) else None

    def take_all(self) -> np.ndarray:
        out, self.buf = self.buf, self.empty
        return out


class EventBatcher:
    """Batches of `window_us` of recorded time (empty windows included) or of `count` events.

    Give `window_us` or `count`; `set()` switches between them while iterating, from the next batch.
    `start_us` and `end_us` are offsets from the first event. Every event between them is delivered
    exactly once; the last batch may be short. Time windows tile time exactly (t1 of one is t0 of the
    next); a count batch spans [first event, last event + 1), so two may share a microsecond.
    Auxiliary samples (IMU, triggers, frames) ride on the first batch whose end lies after them, so
    none is lost even when their packets lag the events in the file. Cut points for everything read
    so far are found with one `searchsorted`, so the cost per batch is a few slices.

    Example::

        for batch in EventBatcher(reader.segments(), window_us=10_000):
            frame = event_frame(batch.events, reader.width, reader.height)
    """

    def __init__(
        self,
        segments: Iterable[Segment | np.ndarray],
        *,
        window_us: int | None = None,
        count: int | None = None,
        start_us: int = 0,
        end_us: int | None = None,
    ) -> None:
        if (window_us is None) == (count is None):
            raise ValueError("EventBatcher: give exactly one of window_us or count")
        self._segments = segments
        self._window_us: int | None = None
        self._count: int | None = None
        self.set(window_us=window_us, count=count)
        self.start_us = int(start_us)
        self.end_us = None if end_us is None else int(end_us)
        #: Time of the first event (µs, the recording's clock); None until the first event is read.
        self.origin_us: int | None = None
        self._error: Exception | None = None

    @property
    def window_us(self) -> int | None:
        return self._window_us

    @property
    def count(self) -> int | None:
        return self._count

    def set(self, *, window_us: int | None = None, count: int | None = None) -> None:
        """Switch to time windows of `window_us` or to batches of `count` events from the next batch."""
        if window_us is not None:
            if window_us <= 0:
                raise ValueError(f"window_us must be > 0, got {window_us}")
            self._window_us, self._count = int(window_us), None
        elif count is not None:
            if count <= 0:
                raise ValueError(f"count must be > 0, got {count}")
            self._window_us, self._count = None, int(count)

    def __iter__(self) -> Iterator[Batch]:
        """Yield batches; an error from the segment source (e.g. a truncated file) is raised only
        after every event read before it has been delivered."""
        self._error = None
        yield from self._batches()
        if self._error is not None:
            raise self._error

    def _plan(
        self, tbuf: np.ndarray, t0: int, t_end: int | None, done: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cut indices into `tbuf` and batch end times for every batch complete with what was read."""
        n_ev = len(tbuf)
        if self._count is not None:
            c = self._count
            n = n_ev // c + (1 if done and n_ev % c else 0)
            js = np.minimum(np.arange(1, n + 1) * c, n_ev)
            ends = tbuf[js - 1] + 1 if n else np.zeros(0, np.int64)
        else:
            w = self._window_us
            assert w is not None
            if not n_ev:
                return np.zeros(0, np.intp), np.zeros(0, np.int64)
            span = int(tbuf[-1]) - t0
            n = (span + w) // w if done else span // w  # done: cover every event; else: complete windows
            ends = t0 + w * np.arange(1, n + 1, dtype=np.int64)
            js = np.searchsorted(tbuf, ends, "left")
        if t_end is not None and n and int(ends[-1]) > t_end:
            k = int(np.searchsorted(ends, t_end, "left"))  # the first batch reaching the end is clipped
            ends = np.append(ends[:k], t_end)
            js = np.append(js[:k], np.searchsorted(tbuf, t_end, "left"))
        return js, ends

    def _batches(self) -> Iterator[Batch]:
        buf = np.zeros(0, EVENT_DTYPE)
        tbuf = np.zeros(0, np.int64)
        imus, trig, raw = _Aux(IMU_DTYPE), _Aux(TRIGGER_DTYPE), _Aux(EMPTY_AEDAT_IMU.dtype)
        frames: list[dict[str, Any]] = []
        t0: int | None = None  # start of the next batch
        t_end: int | None = None
        done = False
        segments = iter(self._segments)

        auxes = (imus, trig, raw)

        def take_frames(last: int | None) -> list[dict[str, Any]]:
            nonlocal frames
            if not frames:
                return []
            floor = imus.floor or 0
            out = [f for f in frames if (last is None or int(f["t"]) < last) and int(f["t"]) >= floor]
            frames = [f for f in frames if last is not None and int(f["t"]) >= last]
            return out

        def flush(events: np.ndarray, a: int, b: int) -> Batch:
            """The final batch: it carries every trailing auxiliary sample."""
            return Batch(events, a, b, imus.take_all(), trig.take_all(), take_frames(None), raw.take_all())

        while True:
            if not done:
                try:
                    seg = next(segments)
                except StopIteration:
                    done, seg = True, None
                except Exception as exc:  # deliver what was read, then re-raise (see __iter__)
                    self._error, done, seg = exc, True, None
                if seg is not None:
                    if isinstance(seg, np.ndarray):
                        seg = Segment(events=seg)
                    imus.add(seg.imus)
                    raw.add(seg.imus_raw)
                    trig.add(seg.triggers)
                    frames.extend(seg.frames)
                    ev = seg.events
                    if len(ev):
                        if self.origin_us is None:
                            self.origin_us = int(ev["t"][0])
                            t0 = self.origin_us + self.start_us
                            t_end = None if self.end_us is None else self.origin_us + self.end_us
                            for aux in auxes:
                                aux.set_floor(t0)
                            ev = ev[np.searchsorted(ev["t"], t0, "left") :]
                        buf = concat_records([buf, ev]) if len(buf) else ev
                        tbuf = np.ascontiguousarray(buf["t"])
            if t0 is None:  # no event yet
                if done:
                    if imus.buf.size or trig.buf.size or frames:
                        yield flush(buf, 0, 0)
                    return
                continue
            # Cut every batch that is complete with what has been read so far.
            while True:
                if t_end is not None and t0 >= t_end:
                    return
                if done and not len(buf):
                    if imus.buf.size or trig.buf.size or frames:
                        yield flush(buf, t0, t0)
                    return
                mode = (self._window_us, self._count)
                js, ends = self._plan(tbuf, t0, t_end, done)
                if not len(js):
                    break
                cuts = [aux.cuts(ends) for aux in auxes]
                starts = [0, 0, 0]
                pos = 0
                for i, (j, t1) in enumerate(zip(js.tolist(), ends.tolist(), strict=True)):
                    if self._count is not None and j > pos:
                        t0 = min(t0, int(tbuf[pos]))  # ties across a count boundary share a microsecond
                    final = done and j == len(buf) and (t_end is None or t1 < t_end)
                    if final:
                        for aux, k in zip(auxes, starts, strict=True):
                            aux.buf = aux.buf[k:]
                        yield flush(buf[pos:j], t0, t1)
                        return
                    parts = []
                    for n, (aux, cut) in enumerate(zip(auxes, cuts, strict=True)):
                        if cut is None:
                            parts.append(aux.empty)
                        else:
                            parts.append(aux.buf[starts[n] : cut[i]])
                            starts[n] = int(cut[i])
                    yield Batch(buf[pos:j], t0, t1, parts[0], parts[1], take_frames(t1), parts[2])
                    pos, t0 = j, t1
                    if (self._window_us, self._count) != mode:
                        break  # set() was called: re-plan the rest with the new mode
                for aux, k in zip(auxes, starts, strict=True):
                    aux.buf = aux.buf[k:]
                buf, tbuf = buf[pos:], tbuf[pos:]
                if not done and (self._window_us, self._count) == mode:
                    break
            if done and not len(buf) and t_end is None:
                return
