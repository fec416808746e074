"""The launcher↔worker control protocol: every message round-trips; malformed frames raise CodecError;
the launcher counts and drops a peer's bad control frames and runs on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from runtime.control import (
    Bound,
    Bye,
    Connect,
    ControlMessage,
    Done,
    Go,
    NodeFailed,
    Ready,
    Start,
    Started,
    Stats,
    Stop,
    decode,
    decode_from_launcher,
    decode_from_worker,
    encode,
)
from runtime.errors import CodecError
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.wiring import Wiring

WIRING = Wiring(
    "ipc:///tmp/x/control.sock",
    {"a": "tcp://10.0.0.2:5000"},
    {"n/in": "tcp://10.0.0.2:5001"},
    {"tcp://10.0.0.2:5000": "tcp://0.0.0.0:5000"},
    {"a": "ipc:///tmp/x/tap-a.sock"},
    "ipc:///tmp/x/telemetry.sock",
    True,
    ["a"],
)
_PCTS = {"p50_us": float("nan"), "p99_us": 2.5, "max_us": 3}
SNAPSHOT: dict[str, Any] = {
    "agent": "a",
    "pid": 7,
    "incarnation": 3,
    "cpu_s": 0.5,
    "rss": 1 << 20,
    "time": 1.7e9,
    "malformed": 0,
    "unroutable": 0,
    "tap_ignored": 0,
    "transport": {"inbox": "ipc:///tmp/x/a.sock", "host": "h", "curve": False},
    "nodes": {
        "n": {
            "state": "running",
            "restarts": 0,
            "failures": 0,
            "error": "",
            "busy_s": 0.1,
            "counters": {"x": 1.0},
        }
    },
    "edges": {
        "s/out -> n/in": {
            "received": 3,
            "dropped": 0,
            "dropped_queue": 0,
            "dropped_gap": 0,
            "dropped_failed": 0,
            "queue_depth": 0,
            "closed": False,
            "latency": _PCTS,
            "hist": {"counts": [0, 3], "sum_us": 4.0},
            "sense_latency": _PCTS,
        }
    },
    "outputs": {"n/out": {"sent": 3, "send_drops": 0, "bytes": 300}},
    "paths": {
        "s/out -> n/in": {"count": 3, "late": 0, "too_late": 0, **_PCTS, "deadline_ms": None},
    },
}


MESSAGES: list[ControlMessage] = [
    Bound("a", 0, 1234, {}),
    Bound("a", 2, 1234, {"tcp://h:1": "tcp://h:2"}),
    Ready("a", 1),
    Started("a", 1),
    Stats("a", 3, SNAPSHOT),
    NodeFailed("a", 0, "n", "on_input", "on_input: RuntimeError: boom"),
    Done("a", 0),
    Bye("a", 0, 1, SNAPSHOT),
    Connect(WIRING),
    Start(),
    Go(),
    Stop(),
]


def _same(x: Any, y: Any) -> bool:
    """Equality that takes NaN == NaN (latencies before any sample are NaN)."""
    if isinstance(x, float) and isinstance(y, float) and x != x and y != y:
        return True
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return bool(x == y)


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: ControlMessage) -> None:
    back = decode(encode(msg))
    assert type(back) is type(msg)
    for name in msg.__dataclass_fields__:
        a, b = getattr(msg, name), getattr(back, name)
        if isinstance(a, Wiring):
            assert a.to_dict() == b.to_dict()
        else:
            assert _same(a, b), name


def test_messages_are_frozen() -> None:
    msg = Ready("a", 0)
    with pytest.raises(AttributeError):
        msg.agent = "b"  # type: ignore[misc]


def test_directions_are_checked() -> None:
    assert decode_from_worker(encode(Ready("a", 0))) == Ready("a", 0)
    assert decode_from_launcher(encode(Go())) == Go()
    with pytest.raises(CodecError, match="goes to workers"):
        decode_from_worker(encode(Go()))
    with pytest.raises(CodecError, match="comes from workers"):
        decode_from_launcher(encode(Done("a", 0)))


def _pack(**body: Any) -> bytes:
    return bytes(msgpack.packb(body))


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"", "not msgpack"),
        (b"\xc1", "not msgpack"),
        (_pack(t="go") + b"\x00", "not msgpack"),  # trailing bytes
        (b"\xd9\x02\xff\xfe", "not msgpack"),  # a str that is not UTF-8
        (msgpack.packb(["go"]), "not a map"),
        (msgpack.packb(msgpack.ExtType(1, b"x")), "not a map"),
        (_pack(kind="go"), "unknown kind None"),
        (_pack(t="launch"), "unknown kind 'launch'"),
        (_pack(t=1), "unknown kind 1"),
        (_pack(t="ready", agent="a"), "lacks field 'incarnation'"),
        (_pack(t="ready", agent="a", incarnation=0, extra=1), "unknown fields: extra"),
        (_pack(t="ready", agent="a", incarnation=True), "'incarnation' must be an integer"),
        (_pack(t="ready", agent="a", incarnation="0"), "'incarnation' must be an integer"),
        (_pack(t="ready", agent=b"a", incarnation=0), "'agent' must be a string"),
        (
            _pack(t="bound", agent="a", incarnation=0, pid=1, endpoints={"x": 2}),
            "'endpoints' must be a map of strings",
        ),
        (
            _pack(t="bound", agent="a", incarnation=0, pid=1, endpoints=[]),
            "'endpoints' must be a map of strings",
        ),
        (_pack(t="stats", agent="a", incarnation=0, snapshot=[1]), "'snapshot' must be a map"),
        # every field's range, and the snapshot's whole shape (the summary reads all of it)
        (_pack(t="ready", agent="", incarnation=0), "'agent' must be a string of 1 to 256"),
        (_pack(t="ready", agent="a" * 257, incarnation=0), "'agent' must be a string of 1 to 256"),
        (_pack(t="ready", agent="a", incarnation=-1), "'incarnation' must be an integer from 0"),
        (_pack(t="ready", agent="a", incarnation=1 << 40), "'incarnation' must be an integer from 0"),
        (_pack(t="bound", agent="a", incarnation=0, pid=0, endpoints={}), "'pid' must be an integer from 1"),
        (_pack(t="bye", agent="a", incarnation=0, code=256, snapshot=SNAPSHOT), "'code' must be an integer"),
        (
            _pack(t="node_failed", agent="a", incarnation=0, node="n", hook="setup", error="x" * 70_000),
            "'error' must be a string of at most",
        ),
        (_pack(t="stats", agent="a", incarnation=0, snapshot={}), r"snapshot: a record of exactly agent"),
        (
            _pack(t="stats", agent="a", incarnation=0, snapshot={**SNAPSHOT, "extra": 1}),
            r"snapshot: a record of exactly",
        ),
        (
            _pack(
                t="stats", agent="a", incarnation=0, snapshot={**SNAPSHOT, "edges": {"e": {"received": 1}}}
            ),
            r"snapshot.edges\['e'\]: a record of exactly received",
        ),
        (
            _pack(t="stats", agent="a", incarnation=0, snapshot={**SNAPSHOT, "rss": -1}),
            r"snapshot.rss: a count",
        ),
        (
            _pack(t="stats", agent="a", incarnation=0, snapshot={**SNAPSHOT, "cpu_s": "1"}),
            r"snapshot.cpu_s: a number",
        ),
        (
            _pack(
                t="stats",
                agent="a",
                incarnation=0,
                snapshot={**SNAPSHOT, "nodes": {"n": {**SNAPSHOT["nodes"]["n"], "state": "zombie"}}},
            ),
            r"snapshot.nodes\['n'\].state: one of created",
        ),
        (
            _pack(
                t="stats",
                agent="a",
                incarnation=0,
                snapshot={**SNAPSHOT, "transport": {**SNAPSHOT["transport"], "curve": 1}},
            ),
            r"snapshot.transport.curve: a bool",
        ),
        (_pack(t="bye", agent="a", incarnation=0, code=0.0, snapshot=SNAPSHOT), "'code' must be an integer"),
        (_pack(t="connect", wiring={"control": "x"}), "'wiring' must be a wiring"),
        (_pack(t="connect", wiring={**WIRING.to_dict(), "curve": 1}), "'wiring' must be a wiring"),
        (_pack(t="connect", wiring={**WIRING.to_dict(), "inbox": {"a": 5}}), "'wiring' must be a wiring"),
        (_pack(t="go", agent="a"), "unknown fields: agent"),
    ],
)
def test_malformed_frames_raise_codec_error(frame: bytes, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        decode(frame)


def test_an_unencodable_snapshot_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="'stats' cannot be encoded"):
        encode(Stats("a", 0, {"x": object()}))


# ----- the launcher keeps running when a peer sends garbage to its control socket -----


async def _until(cond: Callable[[], bool], task: asyncio.Task[Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline or task.done():
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_launcher_counts_and_drops_malformed_control_frames(tmp_path: Path) -> None:
    launcher = Launcher(
        load_graph(
            "ctl.yaml",
            text="""
name: ctl
nodes:
  - {id: src, uses: source.counter, params: {count: 100000, rate_hz: 200}}
  - {id: sink, uses: sink.counter, inputs: {in: src/out}}
""",
        ),
        env={"EDGELOOP_LOG": "ERROR"},
    )
    task = asyncio.create_task(launcher.run(None))
    seen: list[tuple[str, ControlMessage]] = []
    ctx = zmq.asyncio.Context()
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.setsockopt(zmq.IDENTITY, b"rogue")
    try:
        await asyncio.wait_for(launcher.started.wait(), 30)
        launcher.on_control = lambda name, m: seen.append((name, m))
        rogue.connect(launcher.wiring.control)
        garbage = [
            [b"a", b"b"],  # three frames at the ROUTER
            [b"\xc1"],  # not msgpack
            [_pack(t="nope")],  # unknown kind
            [encode(Go())],  # a launcher's kind, from a "worker"
            [encode(Ready("main", 0))],  # names another agent than its sender
        ]
        for frames in garbage:
            await rogue.send_multipart(frames)
        # Well formed, but from an identity no agent's run secret gives: counted and dropped too.
        garbage.append([encode(Stats("rogue", 0, SNAPSHOT))])
        await rogue.send_multipart(garbage[-1])
        await _until(lambda: launcher.control_dropped >= len(garbage), task, 10, "the dropped count")
        # Traffic from the real worker still flows after the garbage.
        n = sum(1 for name, _ in seen if name == "main")
        await _until(
            lambda: sum(1 for name, _ in seen if name == "main") > n, task, 10, "more worker messages"
        )
    finally:
        launcher.stop_requested.set()
        result = await asyncio.wait_for(task, 15)
        rogue.close()
        ctx.term()
    assert launcher.control_dropped == len(garbage)
    assert all(name == "main" for name, _ in seen)  # the rogue's well-formed message was not accepted
    assert result.exit_code == 0, result.failures
    assert result.view["nodes"]["sink"]["state"] == "running"
    assert result.view["nodes"]["sink"]["counters"]["received"] > 0
