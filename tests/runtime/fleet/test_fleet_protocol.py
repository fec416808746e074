"""Control-plane topics and records, and bridge payloads: round trips, and garbage raising only CodecError."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import CodecError, GraphError
from runtime.fleet import protocol as p
from runtime.fleet.payload import decode_payload, encode_payload


def test_topics_live_under_the_senders_subtree() -> None:
    assert p.command_topic("f", "ops", "cam") == "edgeloop/f/agents/ops/cmd/cam"
    assert p.reply_topic("f", "cam", "ops") == "edgeloop/f/agents/cam/reply/ops"
    assert p.parse_topic("edgeloop/f/agents/ops/cmd/cam") == p.ParsedTopic("f", "ops", "cmd", "cam")
    assert p.parse_topic("edgeloop/f/agents/cam/status") == p.ParsedTopic("f", "cam", "status")
    for other in (
        "edgeloop/f/agents/cam",
        "x/f/agents/a/status",
        "edgeloop/f/agents/a/cmd",
        "edgeloop/f/agents/a/foo",
    ):
        assert p.parse_topic(other) is None


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "with space", "x" * 65])
def test_names_that_would_break_topics_are_rejected(bad: str) -> None:
    with pytest.raises(GraphError, match="not a valid name"):
        p.check_name("agent name", bad)


def test_records_round_trip_and_sender_comes_from_the_topic() -> None:
    cmd = p.Command("id1", "deploy", {"graph_yaml": "a: 1"}, 1.5)
    wire = p.encode(cmd)
    assert "sender" not in json.loads(wire)
    assert p.decode_command(wire, "ops") == p.Command("id1", "deploy", {"graph_yaml": "a: 1"}, 1.5, "ops")
    st_ = p.AgentStatus("online", 7, "h", 1.0, 0.5, "", {"role": "cam"})
    assert p.decode_status(p.encode(st_)) == st_
    rep = p.Reply("id1", False, None, "nope", 2.0)
    assert p.decode_reply(p.encode(rep), "cam") == p.Reply("id1", False, None, "nope", 2.0, "cam")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\xff", "not JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b'{"id":"1","kind":"k","sender":"ops"}', "wrong fields"),  # cannot claim a sender
        (b'{"id":"","kind":"k"}', "non-empty string 'id'"),
        (b'{"id":"1"}', "wrong fields"),
        (b" " * (p.MAX_CONTROL_BYTES + 1), "exceeds"),
    ],
)
def test_malformed_commands_raise_codec_error(payload: bytes, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        p.decode_command(payload, "mallory")


def test_status_state_is_checked() -> None:
    bad = json.dumps({"state": "maybe", "pid": 1, "host": "h", "time": 0, "heartbeat_s": 1}).encode()
    with pytest.raises(CodecError, match="'online' or 'offline'"):
        p.decode_status(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_codec_error(data: bytes) -> None:
    for decode in (p.decode_status, p.decode_heartbeat, p.decode_telemetry):
        try:
            decode(data)
        except CodecError:
            pass
    for enc in ("msgpack", "json"):
        try:
            decode_payload(data, enc)  # type: ignore[arg-type]
        except CodecError:
            pass


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_payload_arrays_round_trip(encoding: str) -> None:
    rec = np.zeros(3, dtype=[("x", "<f4"), ("t", "<i8")])
    rec["x"] = [1, 2, 3]
    obj = {
        "img": np.arange(12, dtype=np.uint16).reshape(3, 4),
        "rec": rec,
        "v": np.float32(1.5),
        "l": [1, "a"],
    }
    out = decode_payload(encode_payload(obj, encoding), encoding)  # type: ignore[arg-type]
    np.testing.assert_array_equal(out["img"], obj["img"])
    assert out["img"].dtype == np.uint16 and not out["img"].flags.writeable
    np.testing.assert_array_equal(out["rec"], rec)
    assert out["v"] == 1.5 and out["l"] == [1, "a"]


def test_payload_refuses_what_it_cannot_carry_safely() -> None:
    with pytest.raises(CodecError, match="only numeric kinds"):
        encode_payload(np.array(["a", None], dtype=object), "msgpack")
    with pytest.raises(CodecError, match="NaN"):
        encode_payload({"x": float("nan")}, "json")
    with pytest.raises(CodecError, match="raw bytes"):
        encode_payload(b"\x00", "json")
    short = msgpack.packb({"dtype": "<f4", "shape": [4], "data": b"\x00" * 8})
    with pytest.raises(CodecError, match="needs 16 B"):
        decode_payload(short, "msgpack")
    obj = msgpack.packb({"dtype": "|O", "shape": [1], "data": b"\x00" * 8})
    with pytest.raises(CodecError, match="only numeric kinds"):
        decode_payload(obj, "msgpack")
    # A plain dict that merely looks like an array is kept as is when arrays=False.
    assert decode_payload(short, "msgpack", arrays=False)["shape"] == [4]
