"""The recording's on-disk layout: schema text, metadata record names, and each message's frames in one blob."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..codec import DEFAULT_LIMITS, CodecLimits, decode, encode
from ..errors import CodecError
from ..message import Message

__all__ = [
    "MESSAGE_ENCODING",
    "SCHEMA_NAME",
    "SCHEMA_ENCODING",
    "SCHEMA_TEXT",
    "GRAPH_METADATA",
    "STATS_METADATA",
    "PROFILE",
    "edgeloop_version",
    "pack_frames",
    "unpack_frames",
    "encode_message",
    "decode_message",
]

#: MCAP `message_encoding` of every edgeloop channel (a custom encoding, described by SCHEMA_TEXT).
MESSAGE_ENCODING = "edgeloop-frames"
SCHEMA_NAME = "edgeloop.Message"
SCHEMA_ENCODING = "edgeloop-frames-layout"
SCHEMA_TEXT = """edgeloop message, layout 1 (MCAP message_encoding 'edgeloop-frames'), little-endian:
  u32 n_frames, u32 flags (= 0), n_frames x u64 frame lengths, then the frames, each starting at an
  8-byte-aligned offset from the start of the message data (zero padding in between and at the end).
frame 0: a msgpack map {k: "m", s: seq, ts: t_sense ns, te: t_emit ns, i: producer incarnation, p: payload}.
  A numpy array inside p is msgpack ext type 1 holding msgpack [index, dtype, shape]: its raw C-order
  bytes are frame 1 + index; dtype is a numpy type string ("<f8") or a structured descr [[name, type(, shape)], ...].
  Only numeric dtypes occur (b i u f c). Decode with runtime.codec.decode; nothing is ever pickled.
MCAP fields: log_time = t_emit, publish_time = t_sense, sequence = seq mod 2^32 (the header's s is exact).
"""
#: Metadata record holding the graph file (text, file name, overrides) and the recording's context.
GRAPH_METADATA = "edgeloop.graph"
#: Metadata record the recorder writes when it closes: what it received per topic.
STATS_METADATA = "edgeloop.recorder"
#: The MCAP header profile of every edgeloop recording.
PROFILE = "edgeloop"

_ALIGN = 8


def edgeloop_version() -> str:
    try:
        return version("edgeloop")
    except PackageNotFoundError:
        return "unknown"


def pack_frames(frames: Sequence[Any]) -> bytes:
    """One blob from codec frames (header + array buffers), 8-byte aligned so arrays decode aligned."""
    lens = [memoryview(f).nbytes for f in frames]
    parts: list[Any] = [struct.pack(f"<II{len(lens)}Q", len(lens), 0, *lens)]
    pos = 8 + 8 * len(lens)
    for f, n in zip(frames, lens, strict=True):
        parts.append(f)
        pos += n
        if pos % _ALIGN:
            parts.append(bytes(-pos % _ALIGN))
            pos += -pos % _ALIGN
    return b"".join(parts)


def unpack_frames(
    data: bytes | memoryview, max_frames: int = DEFAULT_LIMITS.max_arrays + 1
) -> list[memoryview]:
    """The frames of a blob made by `pack_frames` (views, no copies). Raises CodecError when malformed."""
    view = memoryview(data)
    if view.nbytes < 8:
        raise CodecError(f"message data of {view.nbytes} bytes is too short for the frame table")
    n, flags = struct.unpack_from("<II", view)
    if not 1 <= n <= max_frames or flags != 0:
        raise CodecError(f"bad frame table (frames={n}, flags={flags}); is this an edgeloop recording?")
    pos = 8 + 8 * n
    if view.nbytes < pos:
        raise CodecError(f"frame table of {n} frames overruns the {view.nbytes}-byte message")
    out = []
    for length in struct.unpack_from(f"<{n}Q", view, 8):
        end = pos + length
        if end > view.nbytes:
            raise CodecError(f"frame of {length} bytes overruns the {view.nbytes}-byte message")
        out.append(view[pos:end])
        pos = end + (-end % _ALIGN)
    if pos != view.nbytes and pos - (-pos % _ALIGN) != view.nbytes:
        raise CodecError(f"{view.nbytes - pos} stray bytes after the last frame")
    return out


def encode_message(msg: Message) -> bytes:
    """A message as recorded: its wire frames (without the topic, which is the channel) in one blob."""
    return pack_frames(encode(msg)[1:])


def decode_message(topic: str, data: bytes | memoryview, limits: CodecLimits = DEFAULT_LIMITS) -> Message:
    """Inverse of `encode_message`, checked by the wire codec (numeric arrays only, bounded)."""
    _kind, msg, _inc = decode([topic.encode(), *unpack_frames(data, limits.max_arrays + 1)], limits)
    return msg
