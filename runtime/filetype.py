"""Say what a file is from its first bytes, so a wrong-type error can name the real type.

The one table of file signatures in edgeloop. Stdlib only, on purpose: the pure sensor libraries
(`nodes.sensors`) use it too, and must not pull in the runtime's machinery (zmq, pydantic…).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

__all__ = ["FileType", "file_type", "describe_file", "MCAP_MAGIC"]

#: The 8 bytes that open (and close) every MCAP file [mcap.dev/spec, "Magic"].
MCAP_MAGIC = b"\x89MCAP0\r\n"

_CONVERT_AEDAT = "not supported: convert it to AEDAT4 with dv or faery"

# (magic prefix, kind, what it is); the first match wins, so longer prefixes of a family come first.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"#!AER-DAT4.0", "aedat4", "an AEDAT 4.0 event-camera recording (replay it with event_camera.replay)"),
    (b"#!AER-DAT3", "aedat3", f"an AEDAT 3.x event-camera recording ({_CONVERT_AEDAT})"),
    (b"#!AER-DAT2", "aedat2", f"an AEDAT 2.0 event-camera recording ({_CONVERT_AEDAT})"),
    (b"#!AER-DAT", "aedat", f"an older AEDAT event-camera recording ({_CONVERT_AEDAT})"),
    (MCAP_MAGIC, "mcap", "an MCAP recording (replay it with `edgeloop replay`)"),
    (b"Event Stream", "es", "an Event Stream (.es) file (convert it with faery)"),
    (b"% ", "evt_dat", "a Prophesee .dat/.raw file (convert it with faery or expelliarmus)"),
    (b"#ROSBAG V2.0", "rosbag", "a ROS 1 bag"),
    (b"SQLite format 3\x00", "sqlite", "an SQLite database (a rosbag2 .db3 bag?)"),
    (b"\x93NUMPY", "npy", "a NumPy .npy array"),
    (b"PK\x03\x04", "zip", "a zip archive (or NumPy .npz)"),
    (b"\x89HDF\r\n\x1a\n", "hdf5", "an HDF5 file"),
    (b"\x1f\x8b", "gzip", "a gzip-compressed file"),
    (b"(\xb5/\xfd", "zstd", "a Zstandard-compressed file"),
    (b"\x04\x22\x4d\x18", "lz4", "an LZ4 frame"),
    (b"\x89PNG", "png", "a PNG image"),
    (b"\xff\xd8\xff", "jpeg", "a JPEG image"),
    (b"%PDF", "pdf", "a PDF document"),
    (b"\x7fELF", "elf", "an ELF executable"),
)


class FileType(NamedTuple):
    """`kind`: a short tag to compare with ("aedat4", "mcap", "npy", "zip", …; "text" for any
    printable file, "binary", "empty", "missing", "directory"); `description`: a phrase for messages."""

    kind: str
    description: str


def _describe_text(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    first = lines[0].strip() if lines else ""
    if first.startswith(("{", "[")):
        return "a JSON text file"
    if any(ln.startswith(("nodes:", "name:", "agents:")) for ln in lines):
        return "a YAML file (an edgeloop graph? the recording comes first: `edgeloop replay RUN.mcap GRAPH.yaml`)"
    if lines and sum("," in ln for ln in lines[:5]) >= min(len(lines[:5]), 2):
        return f"a CSV text file (first line {first[:40]!r})"
    if any(":" in ln for ln in lines[:5]):
        return "a YAML or other text file"
    return f"a text file (first line {first[:40]!r})"


def file_type(path: str | Path, head: int = 512) -> FileType:
    """What `path` holds, from its first `head` bytes, e.g. `FileType("aedat4", "an AEDAT 4.0 …")`."""
    p = Path(path)
    if not p.exists():
        return FileType("missing", "missing (no such file)")
    if p.is_dir():
        return FileType("directory", "a directory")
    with p.open("rb") as f:
        data = f.read(head)
    if not data:
        return FileType("empty", "an empty file")
    for prefix, kind, what in _SIGNATURES:
        if data.startswith(prefix):
            return FileType(kind, what)
    binary = FileType("binary", f"an unrecognised binary file (starts with {data[:8]!r})")
    if any(b < 9 or 13 < b < 32 for b in data):  # control bytes: not text
        return binary
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(data) < head or exc.start < len(data) - 4:  # not just a character cut by `head`
            return binary
        text = data[: exc.start].decode("utf-8")
    return FileType("text", _describe_text(text))


def describe_file(path: str | Path, head: int = 512) -> str:
    """A short phrase naming what `path` holds, e.g. 'an AEDAT 4.0 event-camera recording …'."""
    return file_type(path, head).description
