"""The launcher↔worker control protocol: one frozen message class per kind, msgpack maps on the wire.

A worker's DEALER talks to the launcher's ROUTER under `plan.routing_id` (proof it holds its agent's run
secret). Start-up: `Bound` → `Connect` → `Ready` → `Start` → `Started` → `Go`; then `Stats` twice a second,
`NodeFailed` and `Done` as they happen, `Stop` → `Bye`. `encode(msg)` gives one frame; `decode(frame)` gives the
message or raises `CodecError` naming what is wrong, so a peer's bad frame is dropped, never fatal.
Nothing is unpickled: a frame is a msgpack map `{"t": kind, field: value, ...}` of plain types, every
field checked for type and range (a statistics snapshot against its whole shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeAlias

import msgpack

from .control_fields import check_for
from .errors import CodecError
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
    """A node failed beyond its restart policy in hook `hook` (`setup`, `on_input`…); `error` says why."""

    kind: ClassVar[str] = "node_failed"
    agent: str
    incarnation: int
    node: str
    hook: str
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


_FIELDS: dict[type[ControlMessage], tuple[tuple[str, Callable[[object], object]], ...]] = {
    cls: tuple((f.name, check_for(f.name, str(f.type))) for f in fields(cls)) for cls in _KINDS.values()
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
