"""Say what a file is from its first bytes, so "not a recording" errors can name the real type."""

from __future__ import annotations

from pathlib import Path

__all__ = ["describe_file", "MCAP_MAGIC"]

#: The 8 bytes that open (and close) every MCAP file [mcap.dev/spec, "Magic"].
MCAP_MAGIC = b"\x89MCAP0\r\n"

# (prefix, what it is); the first match wins. Kept small: runtime only needs a helpful message.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"#!AER-DAT4.0", "an AEDAT 4.0 event-camera recording (replay it with event_camera.replay)"),
    (b"#!AER-DAT", "an older AEDAT event-camera recording"),
    (b"#ROSBAG V2.0", "a ROS 1 bag"),
    (b"SQLite format 3\x00", "an SQLite database (a rosbag2 .db3 bag?)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"PK\x03\x04", "a zip archive (or NumPy .npz)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"(\xb5/\xfd", "a Zstandard-compressed file"),
    (b"\x04\x22\x4d\x18", "an LZ4 frame"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an ELF executable"),
)


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


def describe_file(path: str | Path, head: int = 512) -> str:
    """A short phrase naming what `path` holds, e.g. 'an AEDAT 4.0 event-camera recording'."""
    p = Path(path)
    if not p.exists():
        return "missing (no such file)"
    if p.is_dir():
        return "a directory"
    with p.open("rb") as f:
        data = f.read(head)
    if not data:
        return "an empty file"
    if data.startswith(MCAP_MAGIC):
        return "an MCAP file"
    for prefix, what in _SIGNATURES:
        if data.startswith(prefix):
            return what
    binary = f"an unrecognised binary file (starts with {data[:8]!r})"
    if any(b < 9 or 13 < b < 32 for b in data):  # control bytes: not text
        return binary
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(data) < head or exc.start < len(data) - 4:  # not just a character cut by `head`
            return binary
        text = data[: exc.start].decode("utf-8")
    return _describe_text(text)
