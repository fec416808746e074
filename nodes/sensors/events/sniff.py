"""Say what a file is from its first bytes, so a wrong input gets a message naming its real type."""

from __future__ import annotations

from pathlib import Path

from .errors import RecordingFormatError

__all__ = ["sniff", "require_type"]

# (magic prefix, short name, description); checked in order.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"#!AER-DAT4.0", "aedat4", "an AEDAT 4.0 event recording"),
    (
        b"#!AER-DAT3",
        "aedat3",
        "an AEDAT 3.x recording (not supported: convert it to AEDAT4 with dv or faery)",
    ),
    (
        b"#!AER-DAT2",
        "aedat2",
        "an AEDAT 2.0 recording (not supported: convert it to AEDAT4 with dv or faery)",
    ),
    (b"\x89MCAP", "mcap", "an MCAP recording (replay it with `edgeloop replay`)"),
    (b"\x93NUMPY", "npy", "a NumPy .npy array"),
    (b"PK\x03\x04", "zip", "a zip archive (or NumPy .npz)"),
    (b"Event Stream", "es", "an Event Stream (.es) file (convert it with faery)"),
    (b"% ", "evt_dat", "a Prophesee .dat/.raw file (convert it with faery or expelliarmus)"),
    (b"\x89HDF\r\n", "hdf5", "an HDF5 file"),
    (b"\x89PNG", "png", "a PNG image"),
    (b"\xff\xd8\xff", "jpeg", "a JPEG image"),
    (b"\x1f\x8b", "gzip", "a gzip-compressed file"),
    (b"(\xb5/\xfd", "zstd", "a Zstandard-compressed file"),
    (b"\x04\x22\x4d\x18", "lz4", "an LZ4 frame"),
    (b"%PDF", "pdf", "a PDF document"),
)


def sniff(path: str | Path, head: int = 64) -> tuple[str, str]:
    """Return `(kind, description)` for the file at `path`, e.g. `("aedat4", "an AEDAT 4.0 …")`.

    Unknown binary files are `("binary", …)`; printable ones `("text", …)` (CSV and friends);
    empty files `("empty", "an empty file")`.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingFormatError(f"{p}: no such file")
    if p.is_dir():
        raise RecordingFormatError(f"{p}: is a directory, not a recording")
    with p.open("rb") as f:
        data = f.read(head)
    if not data:
        return "empty", "an empty file"
    for magic, kind, desc in _MAGIC:
        if data.startswith(magic):
            return kind, desc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", f"an unrecognised binary file (starts with {data[:8]!r})"
    first = text.splitlines()[0] if text.strip() else ""
    return "text", f"a text file (first line {first[:40]!r})"


def require_type(path: str | Path, kind: str, what: str) -> None:
    """Raise RecordingFormatError unless `path` sniffs as `kind`; `what` names the expected format."""
    found, desc = sniff(path)
    if found != kind:
        raise RecordingFormatError(f"{path}: expected {what}, but this is {desc}")
