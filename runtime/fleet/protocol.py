"""The control-plane wire protocol: topic layout, typed records and their bounded JSON encoding.

Every topic lives under the *sender's* own subtree, `edgeloop/<fleet>/agents/<sender>/...`, so a
broker ACL of "write only under your own name, read the fleet" (mosquitto `pattern readwrite
edgeloop/<fleet>/agents/%u/#`) is enough, and the sender of a command or reply is the topic
segment the broker has authenticated, never a field the sender wrote itself.

=========================================  ====  =======  ========================================
topic (under edgeloop/<fleet>/agents/)     QoS   retain   payload
=========================================  ====  =======  ========================================
<a>/status                                 1     yes      AgentStatus: online / offline (+ will)
<a>/heartbeat                              0     no       Heartbeat: seq, lag_ms
<a>/telemetry                              1     no       Telemetry: seq, data (rates, drops, health)
<a>/cmd/<target>                           1     never    Command: id, kind, body
<a>/reply/<requester>                      1     no       Reply: id, ok, body | error
=========================================  ====  =======  ========================================

Payloads are JSON (UTF-8): control messages are small and rare, and JSON is what dashboards and
`mosquitto_sub` show directly. QoS 1 delivers duplicates [SCIENCE 5.1, OASIS MQTT 5.0], hence ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from ..errors import CodecError, GraphError

__all__ = [
    "ROOT",
    "MAX_CONTROL_BYTES",
    "AgentState",
    "AgentStatus",
    "Heartbeat",
    "Telemetry",
    "Command",
    "Reply",
    "TopicKind",
    "ParsedTopic",
    "check_name",
    "agent_topic",
    "status_topic",
    "heartbeat_topic",
    "telemetry_topic",
    "command_topic",
    "reply_topic",
    "parse_topic",
    "encode",
    "decode_status",
    "decode_heartbeat",
    "decode_telemetry",
    "decode_command",
    "decode_reply",
]

ROOT = "edgeloop"
#: Control payloads above this are refused on receipt (a deploy carries a graph YAML, which is small).
MAX_CONTROL_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

AgentState = Literal["online", "offline", "stale"]
TopicKind = Literal["status", "heartbeat", "telemetry", "cmd", "reply"]


def check_name(what: str, name: str) -> str:
    """Return `name` if it is a valid fleet/agent name (it becomes one MQTT topic level and a username)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise GraphError(
            f"{what} {name!r} is not a valid name: use 1-64 letters, digits, '_', '.' or '-' "
            "(it becomes an MQTT topic level and the broker username, so no '/', '+', '#' or spaces)"
        )
    return name


def agent_topic(fleet: str, agent: str) -> str:
    return f"{ROOT}/{fleet}/agents/{agent}"


def status_topic(fleet: str, agent: str) -> str:
    return f"{agent_topic(fleet, agent)}/status"


def heartbeat_topic(fleet: str, agent: str) -> str:
    return f"{agent_topic(fleet, agent)}/heartbeat"


def telemetry_topic(fleet: str, agent: str) -> str:
    return f"{agent_topic(fleet, agent)}/telemetry"


def command_topic(fleet: str, sender: str, target: str) -> str:
    """A command from `sender` to `target` (published under the sender's subtree)."""
    return f"{agent_topic(fleet, sender)}/cmd/{target}"


def reply_topic(fleet: str, replier: str, requester: str) -> str:
    """A reply from `replier` back to the agent that sent the command."""
    return f"{agent_topic(fleet, replier)}/reply/{requester}"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A received control topic split into its parts; `peer` is the target/requester, if any."""

    fleet: str
    agent: str
    kind: TopicKind
    peer: str | None = None


def parse_topic(topic: str) -> ParsedTopic | None:
    """Split a control topic, or return None for anything that is not one (ignored, never an error)."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != ROOT or parts[2] != "agents":
        return None
    fleet, agent, kind = parts[1], parts[3], parts[4]
    if len(parts) == 5 and kind in ("status", "heartbeat", "telemetry"):
        return ParsedTopic(fleet, agent, kind)  # type: ignore[arg-type]
    if len(parts) == 6 and kind in ("cmd", "reply"):
        return ParsedTopic(fleet, agent, kind, parts[5])  # type: ignore[arg-type]
    return None


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Retained liveness record. `reason` is "shutdown" for a graceful exit, "lost" for the will."""

    state: Literal["online", "offline"]
    pid: int
    host: str
    time: float
    heartbeat_s: float
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent from the agent's event loop, so a blocked loop stops them; `lag_ms` is how late it fired."""

    seq: int
    time: float
    lag_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Rates, drops and health of one agent; `seq` counts from 0 so receivers can count losses."""

    seq: int
    time: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Command:
    """A command to one agent. `sender` comes from the topic on receipt (the broker vouches for it)."""

    id: str
    kind: str
    body: Any = None
    time: float = 0.0
    sender: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a command: `ok` with a `body`, or not ok with an `error` message."""

    id: str
    ok: bool
    body: Any = None
    error: str = ""
    time: float = 0.0
    sender: str = ""


_Record = AgentStatus | Heartbeat | Telemetry | Command | Reply
_R = TypeVar("_R", AgentStatus, Heartbeat, Telemetry, Command, Reply)


def encode(record: _Record) -> bytes:
    """JSON-encode a record (the `sender` field is left out: the topic carries it)."""
    data = asdict(record)
    data.pop("sender", None)
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{type(record).__name__} is not JSON-encodable: {exc}") from exc


def _load(kind: str, payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_CONTROL_BYTES:
        raise CodecError(f"{kind} message of {len(payload)} B exceeds the {MAX_CONTROL_BYTES} B limit")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CodecError(f"{kind} message is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CodecError(f"{kind} message must be a JSON object, got {type(data).__name__}")
    return data


def _build(cls: type[_R], kind: str, data: dict[str, Any], **extra: Any) -> _R:
    try:
        return cls(**data, **extra)
    except TypeError as exc:  # unknown, missing or duplicated fields (a payload may not claim 'sender')
        raise CodecError(f"{kind} message has wrong fields: {exc}") from exc


def decode_status(payload: bytes) -> AgentStatus:
    rec = _build(AgentStatus, "status", _load("status", payload))
    if rec.state not in ("online", "offline"):
        raise CodecError(f"status state must be 'online' or 'offline', got {rec.state!r}")
    return rec


def decode_heartbeat(payload: bytes) -> Heartbeat:
    return _build(Heartbeat, "heartbeat", _load("heartbeat", payload))


def decode_telemetry(payload: bytes) -> Telemetry:
    rec = _build(Telemetry, "telemetry", _load("telemetry", payload))
    if not isinstance(rec.seq, int) or not isinstance(rec.data, dict):
        raise CodecError("telemetry needs an integer 'seq' and an object 'data'")
    return rec


def decode_command(payload: bytes, sender: str) -> Command:
    """Decode a command; `sender` is the topic's agent level (the broker's ACL vouches for it)."""
    rec = _build(Command, "command", _load("command", payload), sender=sender)
    if not isinstance(rec.id, str) or not rec.id or len(rec.id) > 128 or not isinstance(rec.kind, str):
        raise CodecError("command needs a non-empty string 'id' (<= 128 chars) and a string 'kind'")
    return rec


def decode_reply(payload: bytes, sender: str) -> Reply:
    rec = _build(Reply, "reply", _load("reply", payload), sender=sender)
    if not isinstance(rec.id, str) or not isinstance(rec.ok, bool):
        raise CodecError("reply needs a string 'id' and a boolean 'ok'")
    return rec
