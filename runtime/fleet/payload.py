"""Payload encoding for MQTT bridges: msgpack or JSON, numpy arrays as {dtype, shape, data}, never anything that executes code on decode.

An array travels as `{"dtype": ..., "shape": [...], "data": ...}` where `data` is the raw C-order
bytes (a msgpack bin; base64 text in JSON) and `dtype` is a numpy type string such as `"<f4"`, or
for structured arrays a list of `[field, type string]` pairs. Only numeric kinds (b i u f c) are
accepted, the byte count must equal shape x itemsize, and rank is bounded, following the codec
rules of [SCIENCE 5.2] (msgpack-numpy deserialises object arrays through Python objects: we never do).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Literal

import msgpack
import numpy as np

from ..errors import CodecError

__all__ = ["Encoding", "MAX_RANK", "encode_payload", "decode_payload", "array_to_dict", "dict_to_array"]

Encoding = Literal["msgpack", "json"]
MAX_RANK = 32  # numpy's own limit is 64; no sensor needs more
_ARRAY_KEYS = frozenset(("dtype", "shape", "data"))


def _check_dtype(dt: np.dtype[Any]) -> None:
    fields = [dt[n] for n in dt.names] if dt.names else [dt]
    for f in fields:
        if f.names or f.kind not in "biufc" or f.subdtype is not None:
            raise CodecError(
                f"dtype {dt} is not allowed: only numeric kinds b, i, u, f, c, or flat records of them "
                "(no objects, strings, nested or sub-array fields)"
            )


def array_to_dict(a: np.ndarray[Any, Any], *, text: bool = False) -> dict[str, Any]:
    """Describe an array as {dtype, shape, data}; `text=True` base64-encodes the data (for JSON)."""
    _check_dtype(a.dtype)
    dtype: Any = a.dtype.str if a.dtype.names is None else [[n, a.dtype[n].str] for n in a.dtype.names]
    raw = np.ascontiguousarray(a).tobytes()
    return {"dtype": dtype, "shape": list(a.shape), "data": base64.b64encode(raw).decode() if text else raw}


def dict_to_array(d: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Rebuild a read-only array from {dtype, shape, data}; anything inconsistent raises CodecError."""
    spec, shape, data = d["dtype"], d["shape"], d["data"]
    try:
        if isinstance(spec, str):
            dt = np.dtype(spec)
        elif isinstance(spec, list) and all(isinstance(f, list) and len(f) == 2 for f in spec):
            dt = np.dtype([(str(n), str(t)) for n, t in spec])
        else:
            raise CodecError(f"array dtype must be a type string or [[field, type], ...], got {spec!r}")
    except TypeError as exc:
        raise CodecError(f"array dtype {spec!r} is not a numpy dtype: {exc}") from exc
    _check_dtype(dt)
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(isinstance(n, int) and n >= 0 for n in shape)
    ):
        raise CodecError(f"array shape must be a list of at most {MAX_RANK} non-negative ints, got {shape!r}")
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise CodecError(f"array data is not valid base64: {exc}") from exc
    if not isinstance(data, bytes):
        raise CodecError(
            f"array data must be bytes (msgpack) or base64 text (JSON), got {type(data).__name__}"
        )
    expected = math.prod(shape) * dt.itemsize
    if len(data) != expected:
        raise CodecError(f"array data has {len(data)} B but dtype {dt} x shape {shape} needs {expected} B")
    return np.frombuffer(data, dtype=dt).reshape(shape)


def _to_wire(obj: Any, text: bool) -> Any:
    if isinstance(obj, np.ndarray):
        return array_to_dict(obj, text=text)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _to_wire(v, text) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_wire(v, text) for v in obj]
    if text and isinstance(obj, bytes | bytearray):
        raise CodecError("JSON cannot carry raw bytes outside arrays; use encoding: msgpack")
    return obj


def _from_wire(obj: Any) -> Any:
    if isinstance(obj, dict):
        if obj.keys() == _ARRAY_KEYS:
            return dict_to_array(obj)
        return {k: _from_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_wire(v) for v in obj]
    return obj


def encode_payload(obj: Any, encoding: Encoding) -> bytes:
    """Encode plain msgpack/JSON types plus numpy arrays; raises CodecError for anything else."""
    try:
        if encoding == "msgpack":
            return msgpack.packb(_to_wire(obj, False), use_bin_type=True)  # type: ignore[no-any-return]
        return json.dumps(_to_wire(obj, True), separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, OverflowError) as exc:
        hint = " (JSON has no NaN/Infinity; use encoding: msgpack)" if "JSON" in str(exc) else ""
        raise CodecError(f"payload cannot be encoded as {encoding}: {exc}{hint}") from exc


def decode_payload(data: bytes, encoding: Encoding, *, arrays: bool = True) -> Any:
    """Decode a payload; dicts with exactly the keys {dtype, shape, data} become arrays if `arrays`."""
    try:
        if encoding == "msgpack":
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
        else:
            obj = json.loads(data)
    except (ValueError, TypeError, RecursionError, msgpack.ExtraData, msgpack.StackError) as exc:
        raise CodecError(f"payload is not valid {encoding}: {exc}") from exc
    return _from_wire(obj) if arrays else obj
