"""The one file-type table: kinds and phrases for wrong-type errors, from the runtime and the sensor libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.filetype import MCAP_MAGIC, FileType, describe_file, file_type


@pytest.mark.parametrize(
    ("content", "kind", "phrase"),
    [
        (b"#!AER-DAT4.0\r\n#Format: RAW\r\n", "aedat4", "an AEDAT 4.0 event-camera recording"),
        (b"#!AER-DAT3.1\r\n", "aedat3", "AEDAT 3.x event-camera recording (not supported: convert"),
        (b"#!AER-DAT2.0\r\n", "aedat2", "AEDAT 2.0 event-camera recording (not supported"),
        (b"#!AER-DAT1.0\r\n", "aedat", "an older AEDAT event-camera recording"),
        (MCAP_MAGIC + bytes(16), "mcap", "an MCAP recording (replay it with `edgeloop replay`)"),
        (b"Event Stream\x00", "es", "Event Stream (.es) file"),
        (b"% Date 2020-01-01\n% evt 3.0\n\x00\x01", "evt_dat", "Prophesee .dat/.raw file"),
        (b"#ROSBAG V2.0\n", "rosbag", "a ROS 1 bag"),
        (b"SQLite format 3\x00....", "sqlite", "an SQLite database"),
        (b"\x93NUMPY\x01\x00", "npy", "a NumPy .npy array"),
        (b"PK\x03\x04....", "zip", "a zip archive (or NumPy .npz)"),
        (b"\x89HDF\r\n\x1a\n", "hdf5", "an HDF5 file"),
        (b"\x89PNG\r\n\x1a\n", "png", "a PNG image"),
        (b"\x7fELF\x02", "elf", "an ELF executable"),
        (b"t_s,ax,ay,az\n0.0,1,2,3\n0.02,1,2,3\n", "text", "a CSV text file (first line 't_s,ax,ay,az')"),
        (b'{"a": 1}\n', "text", "a JSON text file"),
        (b"name: demo\nnodes:\n  - {id: a, uses: signal.sine}\n", "text", "a YAML file (an edgeloop graph?"),
        (b"hello\n", "text", "a text file (first line 'hello')"),
        (b"", "empty", "an empty file"),
        (b"\x00\x01\x02\x03garbage\xff\xfe", "binary", "an unrecognised binary file"),
    ],
)
def test_kind_and_phrase(tmp_path: Path, content: bytes, kind: str, phrase: str) -> None:
    path = tmp_path / "thing"
    path.write_bytes(content)
    found = file_type(path)
    assert found.kind == kind
    assert phrase in found.description
    assert describe_file(path) == found.description


def test_missing_and_directory(tmp_path: Path) -> None:
    assert file_type(tmp_path / "nope") == FileType("missing", "missing (no such file)")
    assert file_type(tmp_path) == FileType("directory", "a directory")


def test_a_character_cut_by_the_head_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(("a" * 511 + "µ").encode())  # the 2-byte 'µ' straddles byte 512
    assert file_type(path).kind == "text"


def test_stdlib_only() -> None:
    """The sensor libraries import this module; it must not start the runtime's machinery."""
    code = (
        "import sys, runtime.filetype\n"
        "heavy = {'zmq', 'msgpack', 'pydantic', 'numpy', 'yaml', 'nodes'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
