"""The codec: round trips of every payload kind, zero-copy arrays, and garbage that only ever raises CodecError."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from runtime.codec import COPY_THRESHOLD, CodecLimits, decode, encode
from runtime.errors import CodecError
from runtime.message import Message

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
numeric_dtypes = st.one_of(
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.boolean_dtypes(),
)
arrays = hnp.arrays(numeric_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, max_side=6))
payloads = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=True)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


@settings(max_examples=300, deadline=None)
@given(payloads, st.integers(0, 2**40), st.integers(0, 2**62))
def test_round_trip(payload: object, seq: int, t: int) -> None:
    kind, msg, inc = decode(encode(Message("n/out", seq, t, t + 1, payload), incarnation=3))
    assert (kind, inc, msg.topic, msg.seq, msg.t_sense_ns, msg.t_emit_ns) == ("m", 3, "n/out", seq, t, t + 1)
    assert _equal(payload, msg.payload)


def test_structured_events_and_large_arrays_are_zero_copy_views() -> None:
    events = np.zeros(100_000, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    events["t"] = np.arange(100_000)
    frames = encode(Message("cam/events", 0, 0, 0, {"events": events}))
    assert isinstance(frames[2], memoryview) and frames[2].nbytes >= COPY_THRESHOLD
    _, msg, _ = decode(frames)
    out = msg.payload["events"]
    assert out.dtype == events.dtype and np.array_equal(out["t"], events["t"])
    assert not out.flags.writeable


def test_torch_tensors_are_accepted_on_emit() -> None:
    torch = pytest.importorskip("torch")
    _, msg, _ = decode(encode(Message("a/b", 0, 0, 0, torch.arange(6, dtype=torch.float32).reshape(2, 3))))
    assert msg.payload.dtype == np.float32 and msg.payload.shape == (2, 3)


@pytest.mark.parametrize(
    "bad",
    [np.array(["a", "b"]), np.array([object()], dtype=object), np.zeros(2, dtype=[("name", "U4")]), {1, 2}],
)
def test_non_numeric_payloads_are_refused_with_a_reason(bad: object) -> None:
    with pytest.raises(CodecError, match="numeric|cannot encode"):
        encode(Message("a/b", 0, 0, 0, bad))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=5))
def test_garbage_frames_only_raise_codec_error(frames: list[bytes]) -> None:
    try:
        decode(frames)
    except CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_messages_only_raise_codec_error(data: st.DataObject) -> None:
    frames = [
        bytes(memoryview(f)) for f in encode(Message("a/b", 1, 2, 3, {"x": np.arange(5), "y": [1, "z"]}))
    ]
    i = data.draw(st.integers(0, len(frames) - 1))
    raw = bytearray(frames[i])
    if raw:
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    frames[i] = bytes(raw[:cut])
    try:
        decode(frames)
    except CodecError:
        pass


def test_limits_and_lies_are_caught() -> None:
    ok = encode(Message("a/b", 0, 0, 0, np.zeros(1000, np.float64)))
    with pytest.raises(CodecError, match="exceeds the limit"):
        decode(ok, CodecLimits(max_message_bytes=1000))
    header = msgpack.unpackb(ok[1], raw=False)
    meta = msgpack.packb([0, "<f8", [2000]])
    header["p"] = msgpack.ExtType(1, meta)
    with pytest.raises(CodecError, match="needs"):
        decode([ok[0], msgpack.packb(header), ok[2]])
    with pytest.raises(CodecError, match="not referenced"):
        decode([ok[0], ok[1], ok[2], b"extra"])
    bomb = (
        msgpack.packb({"k": "m", "s": 0, "ts": 0, "te": 0, "p": [None] * 10})[:-3] + b"\xdd\xff\xff\xff\xff"
    )
    with pytest.raises(CodecError):
        decode([b"a/b", bomb])
