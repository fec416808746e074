"""MCAP recordings of runs: one channel per topic, each message kept as its wire frames; a reader that survives truncation."""

from __future__ import annotations

from .layout import (
    GRAPH_METADATA,
    MESSAGE_ENCODING,
    SCHEMA_ENCODING,
    SCHEMA_NAME,
    SCHEMA_TEXT,
    STATS_METADATA,
    decode_message,
    edgeloop_version,
    encode_message,
    pack_frames,
    unpack_frames,
)
from .reader import RecordedEntry, RecordingReader
from .writer import COMPRESSIONS, RecordingWriter

__all__ = [
    "MESSAGE_ENCODING",
    "SCHEMA_NAME",
    "SCHEMA_ENCODING",
    "SCHEMA_TEXT",
    "GRAPH_METADATA",
    "STATS_METADATA",
    "COMPRESSIONS",
    "edgeloop_version",
    "pack_frames",
    "unpack_frames",
    "encode_message",
    "decode_message",
    "RecordingWriter",
    "RecordedEntry",
    "RecordingReader",
]
