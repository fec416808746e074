"""Event arrays on disk: `.npy` (structured or N×4), `.npz` (events + width/height) and `.csv` (t,x,y,p).

A `.npy` holds no sensor size, so the writer puts it in a sidecar `NAME.npy.json`
(`{"width": W, "height": H}`) that the reader picks up; `np.load` users read the `.npy` as before.
Readers stream in chunks (a memory map for .npy, chunked parsing for .csv) so that converting a
large file does not load it whole. CSV follows faery's layout: header `t,x@W,y@H,on` (also accepted:
`t,x,y,p`), t in µs, polarity 0/1.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .dtypes import EVENT_DTYPE, as_events, concat_records
from .errors import RecordingFormatError
from .sniff import sniff

__all__ = [
    "read_event_chunks",
    "read_events",
    "write_events",
    "EventArrayWriter",
    "infer_size",
    "size_sidecar",
]

_CHUNK = 1 << 20


def infer_size(events: np.ndarray) -> tuple[int, int]:
    """Smallest sensor (width, height) holding every event."""
    if not len(events):
        return 0, 0
    return int(events["x"].max()) + 1, int(events["y"].max()) + 1


def size_sidecar(path: str | Path) -> Path:
    """The file next to a `.npy` that states its sensor size: `NAME.npy.json`."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def _sidecar_size(p: Path) -> tuple[int, int] | None:
    side = size_sidecar(p)
    if not side.exists():
        return None
    try:
        d = json.loads(side.read_text(encoding="utf-8"))
        w, h = int(d["width"]), int(d["height"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordingFormatError(
            f'{side}: not a sensor-size sidecar of {p.name} (expected {{"width": W, "height": H}}): {exc}; '
            "fix or delete it"
        ) from None
    if w <= 0 or h <= 0:
        raise RecordingFormatError(f"{side}: sensor size {w}x{h} must be positive; fix or delete it")
    return w, h


def read_event_chunks(
    path: str | Path, chunk: int = _CHUNK
) -> tuple[Iterator[np.ndarray], tuple[int, int] | None]:
    """(iterator of EVENT_DTYPE chunks, (width, height) if the file states it) for .npy/.npz/.csv files.

    A `.npy` states its size only through its sidecar (`size_sidecar`); without one the size is None.
    """
    p = Path(path)
    kind, desc = sniff(p)
    suffix = p.suffix.lower()
    if suffix == ".npy" and kind == "npy":
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
        _check_layout(arr, p)
        chunks = (as_events(np.asarray(arr[i : i + chunk])) for i in range(0, len(arr), chunk))
        return chunks, _sidecar_size(p)
    if suffix == ".npz" and kind == "zip":
        with np.load(p, allow_pickle=False) as z:
            if "events" in z.files:
                arr = z["events"]
            elif all(k in z.files for k in ("t", "x", "y", "p")):
                arr = np.stack([z["t"], z["x"], z["y"], z["p"]], axis=1).astype(np.int64)
            else:
                raise RecordingFormatError(
                    f"{p}: an .npz of events needs an 'events' array or t, x, y, p "
                    f"arrays (found: {', '.join(z.files) or 'nothing'})"
                )
            size = (int(z["width"]), int(z["height"])) if "width" in z.files and "height" in z.files else None
        _check_layout(arr, p)
        ev = as_events(arr)
        return iter([ev]), size
    if suffix == ".csv" and kind in ("text", "empty"):
        return _csv_chunks(p, chunk)
    expected = {
        ".npy": "a NumPy .npy event array",
        ".npz": "a NumPy .npz archive",
        ".csv": "a CSV event file (t,x,y,p)",
    }.get(suffix, "an event array (.npy, .npz or .csv)")
    raise RecordingFormatError(f"{p}: expected {expected}, but this is {desc}")


def _check_layout(arr: np.ndarray, p: Path) -> None:
    names = arr.dtype.names
    if names is None and not (arr.ndim == 2 and arr.shape[1] == 4 and arr.dtype.kind in "iuf"):
        raise RecordingFormatError(
            f"{p}: array of shape {arr.shape} and dtype {arr.dtype} is not an event "
            "array (need a structured t, x, y, p array or an (N, 4) numeric array)"
        )
    if names is not None and not ({"t", "x", "y"} <= set(names) and ({"p", "on"} & set(names))):
        raise RecordingFormatError(f"{p}: structured array with fields {names}: need t, x, y and p")


_HEADER = re.compile(r"^\s*t\s*,\s*x(?:@(\d+))?\s*,\s*y(?:@(\d+))?\s*,\s*(p|on)\s*$")


def _csv_chunks(p: Path, chunk: int) -> tuple[Iterator[np.ndarray], tuple[int, int] | None]:
    with p.open("r", encoding="utf-8") as f:
        header = f.readline()
    m = _HEADER.match(header.strip())
    if m is None:
        raise RecordingFormatError(
            f"{p}:1: header {header.strip()!r} is not an event CSV header "
            "(expected 't,x,y,p' or faery's 't,x@W,y@H,on')"
        )
    size = (int(m.group(1)), int(m.group(2))) if m.group(1) and m.group(2) else None

    def gen() -> Iterator[np.ndarray]:
        with p.open("r", encoding="utf-8") as f:
            f.readline()
            line = 2
            while True:
                lines = f.readlines(chunk * 24)  # ~24 bytes per event line
                if not lines:
                    return
                try:
                    data = np.loadtxt(io.StringIO("".join(lines)), delimiter=",", dtype=np.int64, ndmin=2)
                except ValueError as exc:
                    _locate_csv_error(p, lines, line, exc)
                if data.shape[1] != 4:
                    _locate_csv_error(p, lines, line, ValueError("wrong number of columns"))
                yield as_events(data)
                line += len(lines)

    return gen(), size


def _locate_csv_error(p: Path, lines: list[str], first_line: int, exc: Exception) -> None:
    names = ("t", "x", "y", "p")
    for i, text in enumerate(lines):
        fields = text.strip().split(",")
        if not text.strip():
            continue
        if len(fields) != 4:
            raise RecordingFormatError(
                f"{p}:{first_line + i}: expected 4 columns (t,x,y,p), found {len(fields)}"
            )
        for name, value in zip(names, fields, strict=True):
            try:
                int(value)
            except ValueError:
                raise RecordingFormatError(
                    f"{p}:{first_line + i}: column '{name}': {value.strip()!r} is not an integer"
                ) from None
    raise RecordingFormatError(f"{p}: unreadable CSV ({exc})")


def read_events(path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Whole file as (EVENT_DTYPE array, (width, height)); the size is inferred if the file lacks it."""
    chunks, size = read_event_chunks(path)
    parts = list(chunks)
    ev = concat_records(parts) if parts else np.zeros(0, EVENT_DTYPE)
    return ev, size or infer_size(ev)


class EventArrayWriter:
    """Stream EVENT_DTYPE chunks into .npy (raw append, header fixed at close; size in the sidecar
    `NAME.npy.json`), .npz (`events`, `width`, `height`) or .csv (`t,x@W,y@H,on`)."""

    def __init__(self, path: str | Path, width: int, height: int) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in (".npy", ".npz", ".csv"):
            raise ValueError(f"{self.path}: event arrays are written as .npy, .npz or .csv")
        self._parts: list[np.ndarray] = []
        self._n = 0
        self._f: io.BufferedWriter | None = None
        if self.suffix == ".npy":
            self._tmp = self.path.with_suffix(".npy.part")
            self._f = self._tmp.open("wb")
        elif self.suffix == ".csv":
            self._f = self.path.open("wb")
            self._f.write(f"t,x@{self.width},y@{self.height},on\n".encode())

    def write(self, events: np.ndarray) -> None:
        ev = np.ascontiguousarray(as_events(events))
        self._n += len(ev)
        if self.suffix == ".npz":
            self._parts.append(ev)
        elif self.suffix == ".npy":
            assert self._f is not None
            self._f.write(ev.tobytes())
        elif len(ev):
            assert self._f is not None
            cols = np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], axis=1)
            np.savetxt(self._f, cols, fmt="%d", delimiter=",")

    def close(self) -> None:
        if self.suffix == ".npz":
            ev = concat_records(self._parts) if self._parts else np.zeros(0, EVENT_DTYPE)
            np.savez(self.path, events=ev, width=self.width, height=self.height)
        elif self.suffix == ".npy" and self._f is not None:
            self._f.close()
            with self.path.open("wb") as out, self._tmp.open("rb") as src:
                np.lib.format.write_array_header_1_0(
                    out,
                    {
                        "descr": np.lib.format.dtype_to_descr(EVENT_DTYPE),
                        "fortran_order": False,
                        "shape": (self._n,),
                    },
                )
                while block := src.read(1 << 24):
                    out.write(block)
            self._tmp.unlink()
            size = {"width": self.width, "height": self.height}
            size_sidecar(self.path).write_text(json.dumps(size) + "\n", encoding="utf-8")
        elif self._f is not None:
            self._f.close()
        self._f = None

    def __enter__(self) -> EventArrayWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_events(
    path: str | Path, events: np.ndarray | Iterable[np.ndarray], width: int, height: int
) -> None:
    """Write events (one array or chunks) to .npy/.npz/.csv by suffix."""
    with EventArrayWriter(path, width, height) as w:
        for chunk in [events] if isinstance(events, np.ndarray) else events:
            w.write(chunk)
