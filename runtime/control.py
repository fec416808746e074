"""The launcher↔worker control protocol: one frozen message class per kind, msgpack maps on the wire.

A worker's DEALER talks to the launcher's ROUTER under `plan.routing_id` (proof it holds its agent's
run secret). Start-up is a barrier: `Bound` → `Connect` → `Ready` → `Start` → `Started` → `Go`; then `Stats` twice a second, `NodeFailed`
and `Done` as they happen, `Stop` → `Bye`. `encode(msg)` gives one frame; `decode(frame)` gives the
message or raises `CodecError` naming what is wrong, so a peer's bad frame is dropped, never fatal.
Nothing is unpickled: a frame is a msgpack map `{"t": kind, field: value, ...}` of plain types, every
field checked for type and range (a statistics snapshot against its whole shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeAlias

import msgpack

from .errors import CodecError
from .supervision import NodeState
from .wiring import Wiring

__all__ = [
    "Bound",
    "Ready",
    "Started",
    "Stats",
    "NodeFailed",
    "Done",
    "Bye",
    "Connect",
    "Start",
    "Go",
    "Stop",
    "WorkerMessage",
    "LauncherMessage",
    "ControlMessage",
    "encode",
    "decode",
    "decode_from_worker",
    "decode_from_launcher",
    "MAX_CONTROL_BYTES",
]

#: The largest control frame either end accepts (ZMQ_MAXMSGSIZE): a big agent's statistics snapshot is
#: ~100 KiB; a larger frame disconnects its sender before it is read whole.
MAX_CONTROL_BYTES = 16 * 1024 * 1024


# ----- worker → launcher (each names its agent and incarnation: an older incarnation's are ignored) -----
@dataclass(frozen=True, slots=True)
class Bound:
    """The worker bound its inboxes; `endpoints` maps each proposed tcp endpoint it found taken to the
    one it bound instead."""

    kind: ClassVar[str] = "bound"
    agent: str
    incarnation: int
    pid: int
    endpoints: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Ready:
    """Every PUSH socket of the worker is connected."""

    kind: ClassVar[str] = "ready"
    agent: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class Started:
    """Every node of the worker is set up and its input loops run; timers and sources wait for `Go`."""

    kind: ClassVar[str] = "started"
    agent: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class Stats:
    """The worker's statistics snapshot (plain msgpack types; `AgentWorker.snapshot`), every 0.5 s."""

    kind: ClassVar[str] = "stats"
    agent: str
    incarnation: int
    snapshot: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NodeFailed:
    """A node failed beyond its restart policy; `error` is its last error."""

    kind: ClassVar[str] = "node_failed"
    agent: str
    incarnation: int
    node: str
    error: str


@dataclass(frozen=True, slots=True)
class Done:
    """Every node of the worker has finished (end of stream everywhere upstream)."""

    kind: ClassVar[str] = "done"
    agent: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class Bye:
    """The worker stopped: its final snapshot and exit code; it exits right after."""

    kind: ClassVar[str] = "bye"
    agent: str
    incarnation: int
    code: int
    snapshot: Mapping[str, Any]


# ----- launcher → worker -----
@dataclass(frozen=True, slots=True)
class Connect:
    """Every agent has bound: connect the routes to these endpoints (some may have moved)."""

    kind: ClassVar[str] = "connect"
    wiring: Wiring


@dataclass(frozen=True, slots=True)
class Start:
    """Set the nodes up."""

    kind: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class Go:
    """Every agent's nodes are set up: start timers and sources."""

    kind: ClassVar[str] = "go"


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop: cancel, tear down, say goodbye, exit."""

    kind: ClassVar[str] = "stop"


WorkerMessage: TypeAlias = Bound | Ready | Started | Stats | NodeFailed | Done | Bye
LauncherMessage: TypeAlias = Connect | Start | Go | Stop
ControlMessage: TypeAlias = WorkerMessage | LauncherMessage

_WORKER: tuple[type[WorkerMessage], ...] = (Bound, Ready, Started, Stats, NodeFailed, Done, Bye)
_LAUNCHER: tuple[type[LauncherMessage], ...] = (Connect, Start, Go, Stop)
_KINDS: dict[str, type[ControlMessage]] = {cls.kind: cls for cls in (*_WORKER, *_LAUNCHER)}


# ----- field checks: by the field's name where it has a range, else by its declared type -----
_MAX_NAME = 256  # agent and node names, endpoints
_MAX_TEXT = 65_536  # an error message
_MAX_ENTRIES = 100_000  # entries of one map or list in a message
_MAX_INT = 1 << 62


def _ranged(lo: int, hi: int, what: str) -> Callable[[object], object]:
    def check(v: object) -> int:
        if type(v) is not int or not lo <= v <= hi:
            raise TypeError(what)
        return v

    return check


def _bounded_str(limit: int, what: str) -> Callable[[object], object]:
    def check(v: object) -> str:
        if type(v) is not str or len(v) > limit or (limit == _MAX_NAME and not v):
            raise TypeError(what)
        return v

    return check


def _str_map(v: object) -> dict[str, str]:
    if (
        not isinstance(v, dict)
        or len(v) > _MAX_ENTRIES
        or not all(type(k) is str and type(x) is str for k, x in v.items())
    ):
        raise TypeError("a map of strings to strings")
    return v


def _map(v: object) -> dict[str, Any]:
    if not isinstance(v, dict) or not all(type(k) is str for k in v):
        raise TypeError("a map with string keys")
    return v


def _wiring(v: object) -> Wiring:
    d = _map(v)
    remote = d.get("remote")
    try:
        if (
            set(d) != _WIRING_KEYS
            or type(d["control"]) is not str
            or type(d["telemetry"]) is not str
            or type(d["curve"]) is not bool
            or not isinstance(remote, list)
            or not all(type(x) is str for x in remote)
        ):
            raise TypeError
        for table in ("inbox", "bp_inbox", "bind", "tap"):
            _str_map(d[table])
    except TypeError as exc:
        raise TypeError(f"a wiring (keys {', '.join(sorted(_WIRING_KEYS))}; endpoints as strings)") from exc
    return Wiring.from_dict(d)


def _snapshot(v: object) -> dict[str, Any]:
    """A worker's statistics snapshot, checked against `_SNAPSHOT` (every key the summary reads)."""
    d = _map(v)
    try:
        _check_shape(d, _SNAPSHOT, "snapshot")
    except TypeError as exc:
        raise TypeError(f"a statistics snapshot ({exc})") from None
    return d


# The snapshot's shape (`AgentWorker.snapshot`): a dict is a record with exactly these keys; a 1-tuple is
# a map of names to its element; a list a list of its element; `float` a number (int or float, not
# bool); `int` a count (>= 0); `None` in a tuple of types: that value may be nil.
# A key added to a worker's snapshot must be added here too, or its every `Stats` is dropped (logged).
_PCTS = {"p50_us": float, "p99_us": float, "max_us": float}
_SNAPSHOT: dict[str, Any] = {
    "agent": str,
    "pid": int,
    "incarnation": int,
    "cpu_s": float,
    "rss": int,
    "time": float,
    "malformed": int,
    "unroutable": int,
    "tap_ignored": int,
    "transport": {"inbox": str, "host": str, "curve": bool},
    "nodes": (
        {
            "state": "state",
            "restarts": int,
            "failures": int,
            "error": str,
            "busy_s": float,
            "counters": (float,),
        },
    ),
    "edges": (
        {
            "received": int,
            "dropped": int,
            "dropped_queue": int,
            "dropped_gap": int,
            "dropped_failed": int,
            "queue_depth": int,
            "closed": bool,
            "latency": _PCTS,
            "hist": {"counts": [int], "sum_us": float},
            "sense_latency": _PCTS,
        },
    ),
    "outputs": ({"sent": int, "send_drops": int, "bytes": int},),
    "paths": (
        {
            "count": int,
            "late": int,
            "too_late": int,
            **_PCTS,
            "deadline_ms": (float, None),
        },
    ),
}
_STATES = frozenset(s.value for s in NodeState)


def _check_shape(v: object, shape: Any, where: str) -> None:
    if isinstance(shape, dict):
        if type(v) is not dict or set(v) != set(shape):
            raise TypeError(f"{where}: a record of exactly {', '.join(shape)}")
        for k, sub in shape.items():
            _check_shape(v[k], sub, f"{where}.{k}")
    elif type(shape) is tuple and len(shape) == 1:
        if type(v) is not dict or len(v) > _MAX_ENTRIES or not all(type(k) is str for k in v):
            raise TypeError(f"{where}: a map of names")
        for k, x in v.items():
            _check_shape(x, shape[0], f"{where}[{k[:40]!r}]")
    elif type(shape) is list:
        if type(v) is not list or len(v) > _MAX_ENTRIES:
            raise TypeError(f"{where}: a list")
        for x in v:
            _check_shape(x, shape[0], f"{where}[]")
    elif type(shape) is tuple:  # (float, None)
        if v is not None:
            _check_shape(v, shape[0], where)
    elif shape == "state":
        if v not in _STATES:
            raise TypeError(f"{where}: one of {', '.join(sorted(_STATES))}")
    elif shape is float:
        if type(v) is not float and type(v) is not int:
            raise TypeError(f"{where}: a number")
    elif shape is int:
        if type(v) is not int or not 0 <= v <= _MAX_INT:
            raise TypeError(f"{where}: a count (an integer >= 0)")
    elif type(v) is not shape:
        raise TypeError(f"{where}: a {shape.__name__}")


_WIRING_KEYS = set(Wiring("").to_dict())
_CHECKS: dict[str, Callable[[object], object]] = {
    "Mapping[str, str]": _str_map,
    "Mapping[str, Any]": _snapshot,
    "Wiring": _wiring,
}
_BY_NAME: dict[str, Callable[[object], object]] = {
    "agent": _bounded_str(_MAX_NAME, "a string of 1 to 256 characters"),
    "node": _bounded_str(_MAX_NAME, "a string of 1 to 256 characters"),
    "error": _bounded_str(_MAX_TEXT, f"a string of at most {_MAX_TEXT} characters"),
    "incarnation": _ranged(0, (1 << 31) - 1, "an integer from 0 to 2**31-1"),
    "pid": _ranged(1, (1 << 31) - 1, "an integer from 1 to 2**31-1 (a process id)"),
    "code": _ranged(-255, 255, "an integer from -255 to 255 (an exit code)"),
}
_FIELDS: dict[type[ControlMessage], tuple[tuple[str, Callable[[object], object]], ...]] = {
    cls: tuple((f.name, _BY_NAME.get(f.name) or _CHECKS[str(f.type)]) for f in fields(cls))
    for cls in _KINDS.values()
}


def _plain(v: object) -> object:
    if isinstance(v, Wiring):
        return v.to_dict()
    if isinstance(v, Mapping):
        return dict(v)
    return v


def encode(msg: ControlMessage) -> bytes:
    """One frame: a msgpack map of the message's kind (`t`) and fields."""
    body = {"t": msg.kind, **{name: _plain(getattr(msg, name)) for name, _ in _FIELDS[type(msg)]}}
    try:
        return bytes(msgpack.packb(body))
    except (TypeError, ValueError, OverflowError) as exc:  # a snapshot with a non-msgpack value
        raise CodecError(f"control message '{msg.kind}' cannot be encoded: {exc}") from exc


def decode(frame: bytes) -> ControlMessage:
    """The message in `frame`; `CodecError` if it is not msgpack, not a map, of an unknown kind, or has
    a field missing, unknown or of the wrong type."""
    try:
        body = msgpack.unpackb(frame, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # ExtraData, FormatError, bad UTF-8, …
        raise CodecError(f"control message is not msgpack ({len(frame)} B): {exc}") from exc
    if not isinstance(body, dict):
        raise CodecError(f"control message is a {type(body).__name__}, not a map")
    kind = body.pop("t", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CodecError(f"control message of unknown kind {kind!r} (known: {', '.join(_KINDS)})")
    checks = _FIELDS[cls]
    unknown = set(body) - {name for name, _ in checks}
    if unknown:
        raise CodecError(
            f"control message '{kind}' has unknown fields: {', '.join(sorted(map(str, unknown)))}"
        )
    values: dict[str, object] = {}
    for name, check in checks:
        if name not in body:
            raise CodecError(f"control message '{kind}' lacks field '{name}'")
        try:
            values[name] = check(body[name])
        except TypeError as exc:
            raise CodecError(
                f"control message '{kind}': field '{name}' must be {exc}, not {type(body[name]).__name__}"
            ) from exc
    return cls(**values)  # type: ignore[arg-type]


def decode_from_worker(frame: bytes) -> WorkerMessage:
    """`decode`, for the launcher: a launcher's own kind coming back is malformed too."""
    msg = decode(frame)
    if not isinstance(msg, _WORKER):
        raise CodecError(f"control message '{msg.kind}' goes to workers, not from them")
    return msg


def decode_from_launcher(frame: bytes) -> LauncherMessage:
    """`decode`, for a worker: only the launcher's kinds."""
    msg = decode(frame)
    if not isinstance(msg, _LAUNCHER):
        raise CodecError(f"control message '{msg.kind}' comes from workers, not the launcher")
    return msg
