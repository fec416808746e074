"""Stream AEDAT4 recordings packet by packet with `aedat`, and write them with `faery`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aedat
import numpy as np

from .dtypes import EVENT_DTYPE, as_events, concat_records
from .errors import RecordingFormatError
from .sniff import require_type


def _faery() -> Any:
    """faery's AEDAT4 module, imported when something is written (it takes ~0.2 s to import, and
    every worker that only reads or replays would pay it at start)."""
    from faery import aedat as faery_aedat

    return faery_aedat


__all__ = [
    "IMU_DTYPE",
    "TRIGGER_DTYPE",
    "StreamInfo",
    "Segment",
    "AedatReader",
    "AedatWriter",
    "imus_to_si",
    "write_aedat",
    "EMPTY_AEDAT_IMU",
]

#: IMU samples in SI units: t µs, accelerometer m/s², gyroscope rad/s, temperature °C.
IMU_DTYPE = np.dtype(
    [
        ("t", "<i8"),
        ("ax", "<f4"),
        ("ay", "<f4"),
        ("az", "<f4"),
        ("gx", "<f4"),
        ("gy", "<f4"),
        ("gz", "<f4"),
        ("temperature", "<f4"),
    ]
)
#: Trigger signals: t µs, source (0 reset, 1–3 external, 4–5 generator, 6–9 frame/exposure; SCIENCE.md 2.1).
TRIGGER_DTYPE = np.dtype([("t", "<i8"), ("source", "u1")])

# AEDAT4 (dv) stores the accelerometer in g and the gyroscope in °/s [iniVation dv IMU packet docs].
STANDARD_GRAVITY = 9.80665  # m/s² per g, by definition (CGPM 1901)
_DEG = np.pi / 180.0
#: An empty array in aedat's own IMU layout (t u8; temperature; accelerometer g, gyroscope °/s, magnetometer).
EMPTY_AEDAT_IMU = np.zeros(
    0,
    dtype=[("t", "<u8"), ("temperature", "<f4")]
    + [(f"{s}_{a}", "<f4") for s in ("accelerometer", "gyroscope", "magnetometer") for a in "xyz"],
)


@dataclass(frozen=True)
class StreamInfo:
    """One stream of an AEDAT4 file: id, kind (events, frame, imus, triggers) and sensor size."""

    id: int
    kind: str
    width: int | None = None
    height: int | None = None


@dataclass
class Segment:
    """Consecutive packets of a recording, concatenated per stream (events as EVENT_DTYPE)."""

    events: np.ndarray = field(default_factory=lambda: np.zeros(0, EVENT_DTYPE))
    imus: np.ndarray = field(default_factory=lambda: np.zeros(0, IMU_DTYPE))
    triggers: np.ndarray = field(default_factory=lambda: np.zeros(0, TRIGGER_DTYPE))
    frames: list[dict[str, Any]] = field(default_factory=list)
    packets: int = 0
    #: The IMU samples as stored (g, °/s, aedat's layout), for lossless rewriting.
    imus_raw: np.ndarray = field(default_factory=lambda: EMPTY_AEDAT_IMU)


def imus_to_si(imus: np.ndarray) -> np.ndarray:
    """Convert aedat IMU packets (g, °/s) into IMU_DTYPE (m/s², rad/s)."""
    out = np.empty(len(imus), dtype=IMU_DTYPE)
    out["t"] = imus["t"]
    out["temperature"] = imus["temperature"]
    for a in "xyz":
        out[f"a{a}"] = imus[f"accelerometer_{a}"] * STANDARD_GRAVITY
        out[f"g{a}"] = imus[f"gyroscope_{a}"] * _DEG
    return out


class AedatReader:
    """Read an AEDAT4 file as a stream; nothing is loaded whole.

    `aedat` has no seek, so each call to `packets()` / `segments()` reads the file from the start.
    A file truncated mid-packet yields every complete packet, then raises RecordingFormatError.

    Example::

        reader = AedatReader("rec.aedat4")
        for seg in reader.segments():
            handle(seg.events)          # EVENT_DTYPE, ≥ 65,536 events per segment until the end
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        require_type(self.path, "aedat4", "an AEDAT4 recording (.aedat4)")
        try:
            streams = aedat.Decoder(str(self.path)).id_to_stream()
        except Exception as exc:  # aedat raises bare RuntimeError/OSError for a broken header
            raise RecordingFormatError(f"{self.path}: unreadable AEDAT4 header: {exc}") from exc
        self.streams = {
            int(i): StreamInfo(int(i), str(s["type"]), s.get("width"), s.get("height"))
            for i, s in streams.items()
        }
        events = sorted(i for i, s in self.streams.items() if s.kind == "events")
        #: The events stream read (the lowest id, like tonic), or None.
        self.events_id: int | None = events[0] if events else None
        info = self.streams[self.events_id] if self.events_id is not None else None
        self.width: int = int(info.width) if info and info.width else 0
        self.height: int = int(info.height) if info and info.height else 0

    def has(self, kind: str) -> bool:
        """Whether the file declares a stream of `kind` (events, frame, imus, triggers)."""
        return any(s.kind == kind for s in self.streams.values())

    def packets(self) -> Iterator[dict[str, Any]]:
        """Yield aedat's packet dicts in file order; raise RecordingFormatError after the last good one."""
        n = 0
        try:
            for packet in aedat.Decoder(str(self.path)):
                yield packet
                n += 1
        except RuntimeError as exc:  # "failed to fill whole buffer" on truncation (SCIENCE.md 2.1)
            raise RecordingFormatError(
                f"{self.path}: truncated or corrupt after {n} complete packets ({exc}); every complete "
                "packet was delivered"
            ) from exc

    def segments(self, min_events: int = 65_536, max_packets: int = 256) -> Iterator[Segment]:
        """Yield packets concatenated into segments of at least `min_events` events (or `max_packets`).

        Per-packet overhead dominates decoding (~1,900 events per DVXplorer packet), so per-event
        work should run on segments, not packets. A truncated file's last segment is delivered
        before the RecordingFormatError.
        """
        ev: list[np.ndarray] = []
        imu: list[np.ndarray] = []
        trig: list[np.ndarray] = []
        frames: list[dict[str, Any]] = []
        n_ev = n_pk = 0
        error: RecordingFormatError | None = None
        it = self.packets()
        while True:
            try:
                packet = next(it)
            except StopIteration:
                break
            except RecordingFormatError as exc:
                error = exc
                break
            n_pk += 1
            if "events" in packet:
                if packet["stream_id"] == self.events_id:
                    ev.append(packet["events"])
                    n_ev += len(packet["events"])
            elif "imus" in packet:
                imu.append(packet["imus"])
            elif "triggers" in packet:
                trig.append(packet["triggers"])
            elif "frame" in packet:
                frames.append(packet["frame"])
            if n_ev >= min_events or n_pk >= max_packets:
                yield self._segment(ev, imu, trig, frames, n_pk)
                ev, imu, trig, frames, n_ev, n_pk = [], [], [], [], 0, 0
        if n_pk:
            yield self._segment(ev, imu, trig, frames, n_pk)
        if error is not None:
            raise error

    @staticmethod
    def _segment(
        ev: list[np.ndarray],
        imu: list[np.ndarray],
        trig: list[np.ndarray],
        frames: list[dict[str, Any]],
        n_pk: int,
    ) -> Segment:
        seg = Segment(packets=n_pk, frames=frames)
        if ev:
            seg.events = as_events(concat_records(ev))
        if imu:
            seg.imus_raw = concat_records(imu)
            seg.imus = imus_to_si(seg.imus_raw)
        if trig:
            tr = concat_records(trig)
            seg.triggers = np.empty(len(tr), TRIGGER_DTYPE)
            seg.triggers["t"], seg.triggers["source"] = tr["t"], tr["source"]
        return seg

    def events(self, min_events: int = 65_536) -> Iterator[np.ndarray]:
        """Yield only the event arrays (EVENT_DTYPE), in chunks of at least `min_events`."""
        for seg in self.segments(min_events):
            if len(seg.events):
                yield seg.events

    def read_all(self) -> Segment:
        """Everything in memory as one Segment: for small files and tests."""
        parts = list(self.segments())
        if not parts:
            return Segment()
        return Segment(
            events=concat_records([p.events for p in parts]),
            imus=concat_records([p.imus for p in parts]),
            imus_raw=concat_records([p.imus_raw for p in parts]),
            triggers=concat_records([p.triggers for p in parts]),
            frames=[f for p in parts for f in p.frames],
            packets=sum(p.packets for p in parts),
        )


def _node(name: str, path: str, attrs: dict[str, tuple[str, Any]], nodes: list[Any]) -> Any:
    return _faery().DescriptionNode(
        name, path, {k: _faery().DescriptionAttribute(t, v) for k, (t, v) in attrs.items()}, nodes
    )


class AedatWriter:
    """Write an AEDAT4 file through faery's encoder: one events stream (id 0), optional IMU (2) and triggers (3).

    Streams are interleaved in the order written; write in time order so readers can stream.
    IMU input is IMU_DTYPE (SI units, converted back to g and °/s) or aedat's own IMU layout.
    Frames are not written: faery 0.7.1's `Frame` has no Python constructor, so its encoder takes only
    frames that came out of its own decoder.

    Example::

        with AedatWriter("out.aedat4", 320, 240, imus=True) as w:
            w.write_events(events)
            w.write_imus(imu_samples)
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        *,
        imus: bool = False,
        triggers: bool = False,
        compression: Literal["lz4", "zstd", "none"] = "lz4",
    ) -> None:
        self.path = Path(path)
        comp = {"lz4": _faery().LZ4_DEFAULT, "zstd": _faery().ZSTD_DEFAULT, "none": None}[compression]
        name = "NONE" if comp is None else compression.upper()
        root = "/mainloop/Recorder/outInfo/"

        def stream(i: int, type_id: str, out: str, sub: list[Any]) -> Any:
            attrs = {
                "compression": ("string", name),
                "originalOutputName": ("string", out),
                "typeIdentifier": ("string", type_id),
            }
            return _node(str(i), f"{root}{i}/", attrs, sub)

        info = _node(
            "info",
            f"{root}0/info/",
            {"sizeX": ("int", int(width)), "sizeY": ("int", int(height)), "source": ("string", "edgeloop")},
            [],
        )
        nodes = [stream(0, "EVTS", "events", [info])]
        if imus:
            nodes.append(stream(2, "IMUS", "imu", []))
        if triggers:
            nodes.append(stream(3, "TRIG", "triggers", []))
        self.width, self.height = int(width), int(height)
        self._streams = {"imus": imus, "triggers": triggers}
        self._enc: Any = _faery().Encoder(self.path, [_node("outInfo", root, {}, nodes)], comp)
        self._enc.__enter__()
        self._last_t = -1

    def write_events(self, events: np.ndarray) -> None:
        """Append events (any layout `as_events` accepts); t must be ≥ 0 and non-decreasing."""
        ev = as_events(events)
        if not len(ev):
            return
        t = ev["t"]
        if int(t[0]) < max(self._last_t, 0) or (len(t) > 1 and bool(np.any(t[1:] < t[:-1]))):
            raise ValueError(
                f"{self.path}: event timestamps must be ≥ 0 and non-decreasing "
                f"(got t[0]={int(t[0])} after {self._last_t})"
            )
        if int(ev["x"].max()) >= self.width or int(ev["y"].max()) >= self.height:
            raise ValueError(f"{self.path}: events outside the {self.width}×{self.height} sensor")
        if int(ev["p"].max()) > 1:
            ev = ev.copy()
            ev["p"] = ev["p"] > 0
        self._last_t = int(t[-1])
        # EVENT_DTYPE and faery's layout coincide byte for byte (p 0/1 ↔ bool).
        self._enc.write(
            0,
            np.ascontiguousarray(ev).view(np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])),
        )

    def write_imus(self, samples: np.ndarray) -> None:
        """Append IMU samples (IMU_DTYPE in SI units, or aedat's IMU layout)."""
        if not self._streams["imus"]:
            raise ValueError(f"{self.path}: open the writer with imus=True to write IMU samples")
        if not len(samples):
            return
        if samples.dtype.names is not None and "accelerometer_x" in samples.dtype.names:
            self._enc.write(2, np.ascontiguousarray(samples))
            return
        out = np.zeros(len(samples), dtype=EMPTY_AEDAT_IMU.dtype)
        out["t"], out["temperature"] = samples["t"], samples["temperature"]
        for a in "xyz":
            out[f"accelerometer_{a}"] = samples[f"a{a}"] / STANDARD_GRAVITY
            out[f"gyroscope_{a}"] = samples[f"g{a}"] / _DEG
        self._enc.write(2, out)

    def write_triggers(self, triggers: np.ndarray) -> None:
        """Append trigger signals (TRIGGER_DTYPE)."""
        if not self._streams["triggers"]:
            raise ValueError(f"{self.path}: open the writer with triggers=True to write triggers")
        if len(triggers):
            out = np.empty(len(triggers), dtype=[("t", "<u8"), ("source", "u1")])
            out["t"], out["source"] = triggers["t"], triggers["source"]
            self._enc.write(3, out)

    def close(self) -> None:
        """Finish the file (faery writes the data table)."""
        if self._enc is not None:
            self._enc.__exit__(None, None, None)
            self._enc = None

    def __enter__(self) -> AedatWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_aedat(
    path: str | Path,
    events: np.ndarray | Iterable[np.ndarray],
    width: int,
    height: int,
    *,
    imus: np.ndarray | None = None,
    triggers: np.ndarray | None = None,
    compression: Literal["lz4", "zstd", "none"] = "lz4",
) -> None:
    """Write events (one array or an iterable of chunks), and optionally IMU samples and triggers."""
    with AedatWriter(
        path, width, height, imus=imus is not None, triggers=triggers is not None, compression=compression
    ) as w:
        chunks = [events] if isinstance(events, np.ndarray) else events
        imu_t = imus["t"] if imus is not None else None
        trig_t = triggers["t"] if triggers is not None else None
        i_imu = i_trig = 0
        for chunk in chunks:
            ev = as_events(chunk)
            if not len(ev):
                continue
            t_end = int(ev["t"][-1])
            # Interleave auxiliary streams by time so a streaming reader sees them alongside the events.
            if imus is not None and imu_t is not None:
                j = int(np.searchsorted(imu_t, t_end, "right"))
                w.write_imus(imus[i_imu:j])
                i_imu = j
            if triggers is not None and trig_t is not None:
                j = int(np.searchsorted(trig_t, t_end, "right"))
                w.write_triggers(triggers[i_trig:j])
                i_trig = j
            w.write_events(ev)
        if imus is not None:
            w.write_imus(imus[i_imu:])
        if triggers is not None:
            w.write_triggers(triggers[i_trig:])
