"""File types for the sensor libraries: `runtime.filetype`'s one table, with missing files as errors.

`runtime.filetype` is stdlib-only and the only runtime module a sensor library imports (see
ARCHITECTURE.md, sensors): importing it starts none of the runtime's machinery.
"""

from __future__ import annotations

from pathlib import Path

from runtime.filetype import FileType, file_type

from .errors import RecordingFormatError

__all__ = ["sniff", "require_type"]


def sniff(path: str | Path) -> FileType:
    """`(kind, description)` of the file at `path`, e.g. `("aedat4", "an AEDAT 4.0 …")`.

    Unknown binary files are `("binary", …)`; printable ones `("text", …)` (CSV and friends);
    empty files `("empty", "an empty file")`. A missing path or a directory raises
    RecordingFormatError.
    """
    p = Path(path)
    found = file_type(p)
    if found.kind == "missing":
        raise RecordingFormatError(f"{p}: no such file")
    if found.kind == "directory":
        raise RecordingFormatError(f"{p}: is a directory, not a recording")
    return found


def require_type(path: str | Path, kind: str, what: str) -> None:
    """Raise RecordingFormatError unless `path` sniffs as `kind`; `what` names the expected format."""
    found = sniff(path)
    if found.kind != kind:
        raise RecordingFormatError(f"{path}: expected {what}, but this is {found.description}")
