"""The MQTT control plane: embedded broker, fleet client (liveness, telemetry, commands), agent daemon."""

from __future__ import annotations

from .broker import BROKER_URL_ENV, BrokerProcess, EmbeddedBroker, start_embedded_broker_process
from .client import FleetClient
from .commands import DEPLOY, PING, STOP, CommandDesk, CommandHandler
from .events import (
    AgentChanged,
    AgentInfo,
    ConnectionChanged,
    FleetEvent,
    FleetStats,
    ReplyReceived,
    TelemetryReceived,
)
from .liveness import Liveness
from .mqtt import MqttLink, parse_broker_url
from .protocol import Command, Reply, Telemetry

__all__ = [
    "BROKER_URL_ENV",
    "BrokerProcess",
    "EmbeddedBroker",
    "start_embedded_broker_process",
    "DEPLOY",
    "PING",
    "STOP",
    "AgentChanged",
    "AgentInfo",
    "ConnectionChanged",
    "FleetClient",
    "FleetEvent",
    "FleetStats",
    "CommandDesk",
    "CommandHandler",
    "Liveness",
    "ReplyReceived",
    "TelemetryReceived",
    "MqttLink",
    "parse_broker_url",
    "Command",
    "Reply",
    "Telemetry",
]
