"""Read and write IMU CSV files: `t_s,ax,ay,az[,gx,gy,gz][,label]` in s, m/s², rad/s.

The first line is the header; columns are found by name (order free, extra columns ignored).
Gyroscope columns are all three or none: with `accel_only=True` an accelerometer-only file reads
with gyro NaN (`ImuRecording.has_gyro` False) and is written back without them; by default (what
training reads) it is refused, naming the file and the missing columns.
`label` holds an activity name or an integer class; empty means unlabelled (−1). Lines starting
with `#` and blank lines are skipped. Every error names the file, the line and the column.
"""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import numpy as np

from nodes.sensors.events.errors import RecordingFormatError
from nodes.sensors.events.sniff import sniff

from .recording import ACTIVITIES, ImuRecording, resample

__all__ = [
    "COLUMNS",
    "ACCEL_COLUMNS",
    "GYRO_COLUMNS",
    "UNITS",
    "iter_imu_csv",
    "read_imu_csv",
    "write_imu_csv",
    "resample",
]

#: Time and accelerometer columns, always required.
ACCEL_COLUMNS = ("t_s", "ax", "ay", "az")
#: Gyroscope columns: all three or none (accelerometer-only recordings).
GYRO_COLUMNS = ("gx", "gy", "gz")
#: Every sample column, in file order.
COLUMNS = ACCEL_COLUMNS + GYRO_COLUMNS
#: The unit of each column.
UNITS = {"t_s": "s", "ax": "m/s²", "ay": "m/s²", "az": "m/s²", "gx": "rad/s", "gy": "rad/s", "gz": "rad/s"}
_LAYOUT = "t_s,ax,ay,az[,gx,gy,gz][,label] (t_s in s, ax/ay/az in m/s², gx/gy/gz in rad/s)"


def _named(cols: Sequence[str]) -> str:
    """`'ax' (m/s²), 'gz' (rad/s)`: columns with their units, for messages."""
    return ", ".join(f"{c!r} ({UNITS[c]})" for c in cols)


def iter_imu_csv(
    path: str | Path,
    chunk_rows: int = 8192,
    label_names: Sequence[str] | None = None,
    *,
    strict: bool = False,
    accel_only: bool = False,
) -> Generator[ImuRecording, None, None]:
    """Stream an IMU CSV in chunks of `chunk_rows` samples (memory stays flat for any file size).

    Label names map to their index in `label_names` (default: the synthetic activities, in order).
    A name not in it is appended in order of first appearance, or with `strict` (the names are a
    model's classes) raises `RecordingFormatError` naming the line, the label and the known names; so
    does an integer label outside 0..len−1. A bad line raises only after every good row before it has
    been yielded, so a replay delivers all it can before it fails. `accel_only`: accept a file without
    gx, gy, gz (gyro NaN); otherwise its missing columns are an error.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be ≥ 1, got {chunk_rows}")
    p = Path(path)
    kind, desc = sniff(p)
    if kind not in ("text", "empty"):
        raise RecordingFormatError(f"{p}: expected an IMU CSV ({_LAYOUT}), but this is {desc}")
    names = list(label_names) if label_names is not None else list(ACTIVITIES)
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        for header_row in reader:
            if header_row and not header_row[0].lstrip().startswith("#"):
                header = [h.strip() for h in header_row]
                break
        if header is None:
            raise RecordingFormatError(f"{p}: empty file; expected a header line {_LAYOUT}")
        missing = [c for c in ACCEL_COLUMNS if c not in header]
        gyro_missing = [c for c in GYRO_COLUMNS if c not in header]
        partial = 0 < len(gyro_missing) < len(GYRO_COLUMNS)  # a broken header, not an accel-only file
        if partial or (gyro_missing and not accel_only):
            missing += gyro_missing
        if missing:
            hint = ""
            if not partial and not [c for c in missing if c not in GYRO_COLUMNS]:
                hint = (
                    "; this is an accelerometer-only recording: imu.replay and "
                    "read_imu_csv(..., accel_only=True) take it (gyro NaN), training on it is not supported"
                )
            raise RecordingFormatError(
                f"{p}:{reader.line_num}: missing column{'s' if len(missing) > 1 else ''} "
                f"{_named(missing)} (header has: {', '.join(header)}; expected {_LAYOUT}){hint}"
            )
        names_read = COLUMNS if not gyro_missing else ACCEL_COLUMNS
        cols = [header.index(c) for c in names_read]
        lab_col = header.index("label") if "label" in header else None
        need = max(cols + ([lab_col] if lab_col is not None else [])) + 1
        part = _Part(p, names, lab_col is not None, names_read)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
                continue
            if len(row) < need:
                missing_col = header[len(row)] if len(row) < len(header) else "?"
                yield from part.flush()
                raise RecordingFormatError(
                    f"{p}:{reader.line_num}: column '{missing_col}' is missing "
                    f"(row has {len(row)} fields, header has {len(header)})"
                )
            try:
                label = _label(row[lab_col].strip(), names, strict) if lab_col is not None else -1
            except ValueError as exc:
                yield from part.flush()
                raise RecordingFormatError(f"{p}:{reader.line_num}: column 'label': {exc}") from None
            part.add([row[c] for c in cols], reader.line_num, label)
            if len(part.rows) >= chunk_rows:
                yield from part.flush()
        yield from part.flush()


def _label(value: str, names: list[str], strict: bool) -> int:
    if not value:
        return -1
    try:
        k = int(value)
    except ValueError:
        pass
    else:
        if strict and not 0 <= k < len(names):
            raise ValueError(f"class {k} is outside 0..{len(names) - 1} ({_known(names)})")
        return k
    if value not in names:
        if strict:
            raise ValueError(
                f"{value!r} is not a class of the model ({_known(names)}); "
                "train a model that knows it, or drop or relabel those rows"
            )
        names.append(value)
    return names.index(value)


def _known(names: list[str]) -> str:
    return "classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(names))


class _Part:
    """The rows read since the last chunk, checked and turned into an `ImuRecording` on `flush`."""

    def __init__(self, p: Path, names: list[str], labelled: bool, columns: tuple[str, ...]) -> None:
        self.p, self.names, self.labelled, self.columns = p, names, labelled, columns
        self.rows: list[list[str]] = []
        self.lines: list[int] = []
        self.labels: list[int] = []
        self.t_last = -np.inf  # time of the last sample yielded, so order is checked across chunks

    def add(self, row: list[str], line: int, label: int) -> None:
        self.rows.append(row)
        self.lines.append(line)
        self.labels.append(label)

    def flush(self) -> Iterator[ImuRecording]:
        """Yield the good rows as one chunk (if any), then raise for the first bad one (if any)."""
        rows, lines, labels = self.rows, self.lines, self.labels
        self.rows, self.lines, self.labels = [], [], []
        data, error = _parse(rows, lines, self.p, self.columns)
        t = data[:, 0]
        bad = np.flatnonzero(np.diff(np.concatenate([[self.t_last], t])) <= 0)
        if len(bad):
            i = int(bad[0])
            error = RecordingFormatError(
                f"{self.p}:{lines[i]}: column 't_s': {float(t[i])!r} does not increase "
                f"(previous sample at {float(t[i - 1]) if i else self.t_last!r} s)"
            )
            data, t = data[:i], t[:i]
        if len(data):
            gyro = data[:, 4:7].copy() if data.shape[1] == 7 else np.full((len(data), 3), np.nan)
            yield ImuRecording(
                t.copy(),
                data[:, 1:4].copy(),
                gyro,
                np.array(labels[: len(data)], np.int64) if self.labelled else None,
                tuple(self.names),
            )
            self.t_last = float(t[-1])
        if error is not None:
            raise error


def _parse(
    rows: list[list[str]], lines: list[int], p: Path, columns: tuple[str, ...]
) -> tuple[np.ndarray, RecordingFormatError | None]:
    """float64 (n, len(columns)) of the rows up to the first one with a value that is not a finite
    number, and the error naming that row's line and column (None if every row is good)."""
    k = len(columns)
    try:
        data = np.array(rows, dtype=np.float64).reshape(len(rows), k)
        if np.isfinite(data).all():
            return data, None
    except ValueError:
        pass
    good: list[list[float]] = []  # slow path, only to find and name the culprit
    for row, line in zip(rows, lines, strict=True):
        values: list[float] = []
        for name, value in zip(columns, row, strict=True):
            try:
                x = float(value)
            except ValueError:
                x = np.nan
            if not np.isfinite(x):
                error = RecordingFormatError(
                    f"{p}:{line}: column '{name}': {value.strip()!r} is not a finite number "
                    f"in {UNITS[name]} ({_LAYOUT})"
                )
                return np.array(good, np.float64).reshape(len(good), k), error
            values.append(x)
        good.append(values)
    return np.array(good, np.float64).reshape(len(good), k), None


def read_imu_csv(
    path: str | Path,
    label_names: Sequence[str] | None = None,
    *,
    strict: bool = False,
    accel_only: bool = False,
) -> ImuRecording:
    """Read a whole IMU CSV (see the module docstring for the layout; `label_names`, `strict`,
    `accel_only`: `iter_imu_csv`)."""
    parts = list(iter_imu_csv(path, label_names=label_names, strict=strict, accel_only=accel_only))
    if not parts:
        raise RecordingFormatError(f"{path}: no samples after the header")
    return ImuRecording.concat(parts)


def write_imu_csv(path: str | Path, rec: ImuRecording, *, precision: int = 6) -> None:
    """Write `rec` as `t_s,ax,ay,az,gx,gy,gz[,label]` (no gx,gy,gz when `not rec.has_gyro`); labels as
    names when `rec.label_names` covers them."""
    p = Path(path)
    parts = [rec.t_s[:, None], rec.accel] + ([rec.gyro] if rec.has_gyro else [])
    data = np.concatenate(parts, axis=1)
    fmt = f"%.{precision}f"
    header = ",".join(COLUMNS if rec.has_gyro else ACCEL_COLUMNS)
    with p.open("w", encoding="utf-8", newline="") as f:
        if rec.labels is None:
            f.write(header + "\n")
            np.savetxt(f, data, fmt=fmt, delimiter=",")
            return
        f.write(header + ",label\n")
        names = rec.label_names
        lab = [("" if v < 0 else names[v] if v < len(names) else str(v)) for v in rec.labels.tolist()]
        body = np.char.mod(fmt, data)
        for row, label in zip(body.tolist(), lab, strict=True):
            f.write(",".join(row) + "," + label + "\n")
