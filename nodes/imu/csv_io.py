"""Read and write IMU CSV files: `t_s,ax,ay,az,gx,gy,gz[,label]` in s, m/s², rad/s.

The first line is the header; columns are found by name (order free, extra columns ignored).
`label` holds an activity name or an integer class; empty means unlabelled (−1). Lines starting
with `#` and blank lines are skipped. Every error names the file, the line and the column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nodes.events.errors import RecordingFormatError
from nodes.events.sniff import sniff

from .recording import ImuRecording, resample

__all__ = ["COLUMNS", "iter_imu_csv", "read_imu_csv", "write_imu_csv", "resample"]

#: Required columns and their units: time (s), accelerometer x/y/z (m/s²), gyroscope x/y/z (rad/s).
COLUMNS = ("t_s", "ax", "ay", "az", "gx", "gy", "gz")
_LAYOUT = "t_s,ax,ay,az,gx,gy,gz[,label] (s, m/s², rad/s)"


def _default_names() -> list[str]:
    from .synthetic import ACTIVITIES

    return list(ACTIVITIES)


def iter_imu_csv(
    path: str | Path, chunk_rows: int = 8192, label_names: list[str] | None = None
) -> Iterator[ImuRecording]:
    """Stream an IMU CSV in chunks of `chunk_rows` samples (memory stays flat for any file size).

    Label names map to their index in `label_names` (default: the synthetic activities, in order);
    names not in it are appended in order of first appearance.
    """
    p = Path(path)
    kind, desc = sniff(p)
    if kind not in ("text", "empty"):
        raise RecordingFormatError(f"{p}: expected an IMU CSV ({_LAYOUT}), but this is {desc}")
    names = list(label_names) if label_names is not None else _default_names()
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        for header_row in reader:
            if header_row and not header_row[0].lstrip().startswith("#"):
                header = [h.strip() for h in header_row]
                break
        if header is None:
            raise RecordingFormatError(f"{p}: empty file; expected a header line {_LAYOUT}")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise RecordingFormatError(
                f"{p}:{reader.line_num}: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)} (header has: {', '.join(header)}; expected {_LAYOUT})"
            )
        cols = [header.index(c) for c in COLUMNS]
        lab_col = header.index("label") if "label" in header else None
        need = max(cols + ([lab_col] if lab_col is not None else [])) + 1
        rows: list[list[str]] = []
        lines: list[int] = []
        labels: list[int] = []
        t_last = -np.inf
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
                continue
            if len(row) < need:
                missing_col = header[len(row)] if len(row) < len(header) else "?"
                raise RecordingFormatError(
                    f"{p}:{reader.line_num}: column '{missing_col}' is missing "
                    f"(row has {len(row)} fields, header has {len(header)})"
                )
            rows.append([row[c] for c in cols])
            lines.append(reader.line_num)
            if lab_col is not None:
                labels.append(_label(row[lab_col].strip(), names, p, reader.line_num))
            if len(rows) >= chunk_rows:
                rec, t_last = _chunk(rows, lines, labels, lab_col is not None, names, p, t_last)
                yield rec
                rows, lines, labels = [], [], []
        if rows:
            yield _chunk(rows, lines, labels, lab_col is not None, names, p, t_last)[0]


def _label(value: str, names: list[str], p: Path, line: int) -> int:
    if not value:
        return -1
    try:
        return int(value)
    except ValueError:
        pass
    if value not in names:
        names.append(value)
    return names.index(value)


def _chunk(
    rows: list[list[str]],
    lines: list[int],
    labels: list[int],
    labelled: bool,
    names: list[str],
    p: Path,
    t_last: float,
) -> tuple[ImuRecording, float]:
    try:
        data = np.array(rows, dtype=np.float64)
    except ValueError:
        data = None
    if data is None or not np.isfinite(data).all():
        for row, line in zip(rows, lines, strict=True):  # slow path, only to name the culprit
            for name, value in zip(COLUMNS, row, strict=True):
                try:
                    ok = np.isfinite(float(value))
                except ValueError:
                    ok = False
                if not ok:
                    raise RecordingFormatError(
                        f"{p}:{line}: column '{name}': {value.strip()!r} is not a finite number ({_LAYOUT})"
                    )
    assert data is not None
    t = data[:, 0]
    bad = np.flatnonzero(np.diff(np.concatenate([[t_last], t])) <= 0)
    if len(bad):
        i = int(bad[0])
        raise RecordingFormatError(
            f"{p}:{lines[i]}: column 't_s': {float(t[i])!r} does not increase "
            f"(previous sample at {float(t[i - 1]) if i else t_last!r} s)"
        )
    rec = ImuRecording(
        t.copy(),
        data[:, 1:4].copy(),
        data[:, 4:7].copy(),
        np.array(labels, np.int64) if labelled else None,
        tuple(names),
    )
    return rec, float(t[-1])


def read_imu_csv(path: str | Path, label_names: list[str] | None = None) -> ImuRecording:
    """Read a whole IMU CSV (see the module docstring for the layout)."""
    parts = list(iter_imu_csv(path, label_names=label_names))
    if not parts:
        raise RecordingFormatError(f"{path}: no samples after the header")
    return ImuRecording.concat(parts)


def write_imu_csv(path: str | Path, rec: ImuRecording, *, precision: int = 6) -> None:
    """Write `rec` as `t_s,ax,ay,az,gx,gy,gz[,label]`; labels as names when `rec.label_names` covers them."""
    p = Path(path)
    data = np.concatenate([rec.t_s[:, None], rec.accel, rec.gyro], axis=1)
    fmt = f"%.{precision}f"
    header = ",".join(COLUMNS)
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
