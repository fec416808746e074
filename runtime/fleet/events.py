"""What a FleetClient reports: the agents it knows, typed fleet events, and its drop counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import protocol as p

__all__ = [
    "AgentInfo",
    "AgentChanged",
    "TelemetryReceived",
    "ReplyReceived",
    "ConnectionChanged",
    "FleetEvent",
    "FleetStats",
]


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """What this client knows about another agent; times are wall-clock seconds (time.time())."""

    name: str
    state: p.AgentState
    pid: int = 0
    host: str = ""
    since: float = 0.0
    last_seen: float = 0.0
    heartbeat_s: float = 1.0
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentChanged:
    """Another agent went online, offline (graceful or by last will) or stale (missed heartbeats)."""

    agent: str
    state: p.AgentState
    previous: p.AgentState | None
    info: AgentInfo


@dataclass(frozen=True, slots=True)
class TelemetryReceived:
    agent: str
    telemetry: p.Telemetry


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """A reply nobody was awaiting (e.g. to `send_command`, or a late one after a timeout)."""

    agent: str
    reply: p.Reply


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """This client's own broker connection went up or down."""

    connected: bool
    error: str | None = None


FleetEvent = AgentChanged | TelemetryReceived | ReplyReceived | ConnectionChanged


@dataclass(slots=True)
class FleetStats:
    """Counters; every drop is counted, none is silent."""

    commands_handled: int = 0
    commands_duplicate: int = 0
    commands_dropped: int = 0
    events_dropped: int = 0
    telemetry_dropped: int = 0
    malformed: int = 0
