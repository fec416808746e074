"""A real mosquitto with a password file and ACLs: who may connect, publish and subscribe."""

from __future__ import annotations

import asyncio
import json

import pytest
from control_helpers import FLEET
from mosquitto_broker import Mosquitto

from runtime.errors import TransportError
from runtime.fleet.client import FleetClient
from runtime.fleet.events import TelemetryReceived
from runtime.fleet.mqtt import MqttLink
from runtime.fleet.protocol import Command, command_topic, status_topic, telemetry_topic


async def test_anonymous_client_is_refused(mosquitto: Mosquitto) -> None:
    with pytest.raises(TransportError, match="refused"):
        async with FleetClient(mosquitto.url, "alice", FLEET, connect_timeout_s=5.0):
            pass


async def test_wrong_password_is_refused(mosquitto: Mosquitto) -> None:
    with pytest.raises(TransportError, match="refused user 'alice'"):
        async with FleetClient(mosquitto.url, "alice", FLEET, username="alice", password="wrong"):
            pass


async def test_reading_outside_the_fleet_gets_nothing(mosquitto: Mosquitto) -> None:
    """mosquitto 2.0 grants the SUBSCRIBE but delivers only what the ACL lets alice read."""
    async with (
        MqttLink(mosquitto.url, **mosquitto.creds("alice")) as alice,
        MqttLink(mosquitto.url, **mosquitto.creds("admin")) as admin,
    ):
        await alice.subscribe([("edgeloop/otherfleet/#", 1), (f"edgeloop/{FLEET}/#", 1)])
        await admin.publish("edgeloop/otherfleet/agents/x/telemetry", b"secret", qos=1)
        await admin.publish(telemetry_topic(FLEET, "admin"), b"sentinel", qos=1)
        got = await asyncio.wait_for(anext(alice.messages()), 5.0)
    assert (got.topic, got.payload) == (telemetry_topic(FLEET, "admin"), b"sentinel")


async def test_publishing_outside_own_subtree_gets_nothing_through(mosquitto: Mosquitto) -> None:
    """alice may not speak for bob: spoofed status and commands never arrive, her own messages do."""
    carol_saw: list[Command] = []

    async def record(cmd: Command) -> str:
        carol_saw.append(cmd)
        return "ok"

    async with (
        FleetClient(mosquitto.url, "ops", FLEET, watch_telemetry=True, **mosquitto.creds("ops")) as ops,
        FleetClient(mosquitto.url, "carol", FLEET, **mosquitto.creds("carol")) as carol,
        MqttLink(mosquitto.url, **mosquitto.creds("alice")) as alice,
    ):
        carol.on_command("act", record)
        await ops.wait_for_agent("carol")
        spoof_status = json.dumps({"state": "online", "pid": 1, "host": "x", "time": 0.0, "heartbeat_s": 1.0})
        spoof_cmd = json.dumps({"id": "spoof", "kind": "act", "body": None, "time": 0.0})
        # Denied by the ACL: mosquitto still acknowledges (MQTT 3.1.1 has no negative PUBACK) but drops them.
        await alice.publish(status_topic(FLEET, "bob"), spoof_status.encode(), qos=1, retain=True)
        await alice.publish(command_topic(FLEET, "bob", "carol"), spoof_cmd.encode(), qos=1)
        # Allowed: alice's own subtree. Same connection, so these arrive after anything published before.
        real_cmd = json.dumps({"id": "real", "kind": "act", "body": None, "time": 0.0})
        await alice.publish(command_topic(FLEET, "alice", "carol"), real_cmd.encode(), qos=1)
        tm = json.dumps({"seq": 0, "time": 0.0, "data": {"sentinel": True}})
        await alice.publish(telemetry_topic(FLEET, "alice"), tm.encode(), qos=1)

        async def sentinel() -> None:
            async for ev in ops.events():
                if isinstance(ev, TelemetryReceived) and ev.agent == "alice":
                    return

        await asyncio.wait_for(sentinel(), 5.0)
        async with asyncio.timeout(5.0):
            while not carol_saw:
                await asyncio.sleep(0.01)  # bounded poll for the handler, which runs in carol's task
    assert "bob" not in ops.agents
    assert [(c.id, c.sender) for c in carol_saw] == [("real", "alice")]
