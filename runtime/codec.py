"""Wire codec: `[topic, msgpack header, raw array frames…]`; numeric arrays only, nothing ever pickled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .errors import CodecError
from .message import Message, Payload

__all__ = ["CodecLimits", "encode", "decode", "to_wire_payload", "readonly", "EOS", "COPY_THRESHOLD"]

#: pyzmq copies frames below this size anyway; above it, array buffers go zero-copy (SCIENCE.md 1.1).
COPY_THRESHOLD = 65536
_EXT_ARRAY = 1
_NUMERIC_KINDS = frozenset("biufc")
#: Header kind of an end-of-stream marker: the producer's output is finished.
EOS = "eos"


@dataclass(frozen=True)
class CodecLimits:
    """Bounds checked on every decode; an input that breaks them is counted and dropped."""

    max_message_bytes: int = 256 * 1024 * 1024
    max_header_bytes: int = 4 * 1024 * 1024
    max_arrays: int = 256
    max_rank: int = 8


DEFAULT_LIMITS = CodecLimits()


def _check_dtype(dt: np.dtype[Any]) -> None:
    if dt.fields is not None:
        for name, (sub, *_rest) in dt.fields.items():
            base = sub.base if sub.subdtype is not None else sub
            if base.fields is not None or base.kind not in _NUMERIC_KINDS:
                raise CodecError(
                    f"array field '{name}' has dtype {sub}: only numeric fields (bool, int, uint, "
                    "float, complex) can travel; convert it before emitting"
                )
        return
    if dt.kind not in _NUMERIC_KINDS:
        raise CodecError(
            f"arrays of dtype {dt} cannot travel: only numeric dtypes (bool, int, uint, float, "
            "complex) or structured arrays of them; convert strings/objects to plain types first"
        )


def _dtype_descr(dt: np.dtype[Any]) -> Any:
    return (
        [[*d[:2], list(d[2])] if len(d) == 3 else list(d) for d in dt.descr]
        if dt.fields is not None
        else dt.str
    )


def _dtype_from_descr(descr: Any) -> np.dtype[Any]:
    try:
        if isinstance(descr, str):
            dt = np.dtype(descr)
        elif isinstance(descr, list) and all(isinstance(d, list) and len(d) in (2, 3) for d in descr):
            dt = np.dtype(
                [
                    (str(d[0]), str(d[1]), tuple(d[2])) if len(d) == 3 else (str(d[0]), str(d[1]))
                    for d in descr
                ]
            )
        else:
            raise TypeError(descr)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"bad dtype descriptor {descr!r}") from exc
    _check_dtype(dt)
    return dt


_SCALARS = frozenset({bytes, str, int, float, bool, type(None)})


def to_wire_payload(payload: Payload) -> Payload:
    """Convert what a node may emit (torch tensors, numpy scalars, tuples) to wire-ready types."""
    if type(payload) in _SCALARS:
        return payload
    if isinstance(payload, np.ndarray):
        _check_dtype(payload.dtype)
        return payload
    if isinstance(payload, dict):
        return {k: to_wire_payload(v) for k, v in payload.items()}
    if isinstance(payload, list | tuple):
        return [to_wire_payload(v) for v in payload]
    if isinstance(payload, np.generic):
        return payload.item()
    mod = type(payload).__module__
    if mod.startswith("torch") and hasattr(payload, "detach"):
        arr = payload.detach().cpu().numpy()
        _check_dtype(arr.dtype)
        return arr
    return payload


def readonly(payload: Payload) -> Payload:
    """Read-only views of every array in `payload`, for by-reference delivery inside a process."""
    if isinstance(payload, np.ndarray):
        if not payload.flags.writeable:
            return payload
        view = payload.view()
        view.flags.writeable = False
        return view
    if isinstance(payload, dict):
        return {k: readonly(v) for k, v in payload.items()}
    if isinstance(payload, list):
        return [readonly(v) for v in payload]
    return payload


def encode(msg: Message, *, kind: str = "m", incarnation: int = 0, wire_ready: bool = False) -> list[Any]:
    """Frames for one message: topic, header, then one frame per array (C-contiguous buffers).

    `wire_ready`: the payload already went through `to_wire_payload` (the worker's emit does that)."""
    buffers: list[Any] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            _check_dtype(obj.dtype)
            arr = obj if obj.flags.c_contiguous else obj.copy(order="C")
            meta = msgpack.packb([len(buffers), _dtype_descr(arr.dtype), list(arr.shape)])
            buffers.append(arr.data if arr.nbytes >= COPY_THRESHOLD else arr.tobytes())
            return msgpack.ExtType(_EXT_ARRAY, meta)
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, tuple):
            return list(obj)
        raise CodecError(
            f"cannot encode {type(obj).__name__} on '{msg.topic}': payloads are plain msgpack "
            "types (None, bool, int, float, str, bytes, list, dict) and numeric numpy arrays"
        )

    header = {
        "k": kind,
        "s": msg.seq,
        "ts": msg.t_sense_ns,
        "te": msg.t_emit_ns,
        "i": incarnation,
        "o": msg.origin,
        "p": msg.payload if wire_ready else to_wire_payload(msg.payload),
    }
    try:
        packed = msgpack.packb(header, default=default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"cannot encode payload on '{msg.topic}': {exc}") from exc
    return [msg.topic.encode(), packed, *buffers]


_topics: dict[bytes, str] = {}
_MAX_TOPIC_BYTES = 1024  # a topic is `node/port`


def _topic(raw: bytes) -> str:
    """The topic frame as text; a graph has few topics, so decoded ones are remembered (bounded)."""
    topic = _topics.get(raw)
    if topic is None:
        if len(raw) > _MAX_TOPIC_BYTES:
            raise CodecError(f"topic frame of {len(raw)} bytes exceeds {_MAX_TOPIC_BYTES}")
        try:
            topic = raw.decode()
        except UnicodeDecodeError as exc:
            raise CodecError("topic frame is not UTF-8") from exc
        if len(_topics) < 4096:
            _topics[raw] = topic
    return topic


def _frame_bytes(frame: Any) -> memoryview:
    buf = getattr(frame, "buffer", frame)
    return memoryview(buf)


def _no_arrays(code: int, data: bytes) -> Any:
    raise CodecError("header references an array frame, but the message has none")


def decode(frames: list[Any], limits: CodecLimits = DEFAULT_LIMITS) -> tuple[str, Message, int]:
    """Decode frames into (kind, message, incarnation). Raises CodecError on anything malformed."""
    n = len(frames)
    if n < 2:
        raise CodecError(f"message has {n} frame(s); expected topic, header and array frames")
    if n - 2 > limits.max_arrays:
        raise CodecError(f"message has {n - 2} array frames (limit {limits.max_arrays})")
    head = _frame_bytes(frames[1])
    if head.nbytes > limits.max_header_bytes:
        raise CodecError(f"header of {head.nbytes} bytes exceeds {limits.max_header_bytes}")
    used: set[int] = set()
    if n == 2:  # the common small message: no array frames
        if head.nbytes > limits.max_message_bytes:
            raise CodecError(
                f"message of {head.nbytes} bytes exceeds the limit of {limits.max_message_bytes}"
            )
        arrays: list[memoryview] = []
        ext_hook: Any = _no_arrays
    else:
        arrays = [_frame_bytes(f) for f in frames[2:]]
        total = head.nbytes + sum(a.nbytes for a in arrays)
        if total > limits.max_message_bytes:
            raise CodecError(f"message of {total} bytes exceeds the limit of {limits.max_message_bytes}")
        ext_hook = _array_hook(arrays, used, limits)
    topic = _topic(bytes(_frame_bytes(frames[0])))
    try:
        header = msgpack.unpackb(head, raw=False, ext_hook=ext_hook)
    except CodecError:
        raise
    except Exception as exc:  # msgpack raises many types (ValueError, ExtraData, StackError, ...)
        raise CodecError(f"malformed header on '{topic}': {type(exc).__name__}: {exc}") from exc
    if type(header) is not dict:
        raise CodecError("header is not a map")
    try:
        kind, seq, ts, te = header["k"], header["s"], header["ts"], header["te"]
    except KeyError as exc:
        raise CodecError(f"header lacks field {exc}") from exc
    inc = header.get("i", 0)
    origin = header.get("o", "")
    if (
        (kind != "m" and kind != EOS)
        or type(seq) is not int
        or type(ts) is not int
        or type(te) is not int
        or type(inc) is not int
        or type(origin) is not str
    ):
        raise CodecError("header fields have the wrong types")
    if seq < 0 or inc < 0:
        raise CodecError(f"header of '{topic}': sequence {seq} and incarnation {inc} must be >= 0")
    if len(used) != len(arrays):
        raise CodecError(f"{len(arrays) - len(used)} array frame(s) not referenced by the header")
    return kind, Message(topic, seq, ts, te, header.get("p"), origin), inc


def _array_hook(arrays: list[memoryview], used: set[int], limits: CodecLimits) -> Any:
    """msgpack's ext hook for one message: array descriptors become read-only views of their frames."""

    def ext_hook(code: int, data: bytes) -> Any:
        if code != _EXT_ARRAY:
            raise CodecError(f"unknown extension type {code}")
        meta = msgpack.unpackb(data, raw=False, max_array_len=limits.max_rank + 3)
        if not (
            isinstance(meta, list)
            and len(meta) == 3
            and isinstance(meta[0], int)
            and isinstance(meta[2], list)
        ):
            raise CodecError("malformed array descriptor")
        idx, descr, shape = meta
        if not 0 <= idx < len(arrays) or idx in used:
            raise CodecError(f"array descriptor points at frame {idx}, which is missing or already used")
        if len(shape) > limits.max_rank or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CodecError(f"bad array shape {shape!r}")
        dt = _dtype_from_descr(descr)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dt.itemsize != arrays[idx].nbytes:
            raise CodecError(
                f"array frame has {arrays[idx].nbytes} bytes; shape {shape} of {dt} needs "
                f"{count * dt.itemsize}"
            )
        used.add(idx)
        arr = np.frombuffer(arrays[idx], dtype=dt, count=count).reshape(shape)
        if arr.flags.writeable:
            arr.flags.writeable = False
        return arr

    return ext_hook
