"""The embedded amqtt broker: in-process and as a child process, ephemeral ports, bounded shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime.errors import GraphError, TransportError
from runtime.fleet.broker import EmbeddedBroker, start_embedded_broker_process
from runtime.fleet.client import FleetClient
from runtime.fleet.mqtt import MqttLink, parse_broker_url


async def test_embedded_broker_serves_and_shuts_down_within_a_second() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    assert broker.url.startswith("mqtt://127.0.0.1:") and broker.port > 0
    link = MqttLink(broker.url, connect_timeout_s=2.0)
    await link.start()
    await link.subscribe([("t/#", 1)])
    await link.publish("t/x", b"hello", qos=1)
    got = await asyncio.wait_for(anext(link.messages()), 2.0)
    assert (got.topic, got.payload) == ("t/x", b"hello")
    t0 = time.monotonic()
    await broker.stop()  # a client is still connected
    assert time.monotonic() - t0 < 1.0
    await link.close()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == [], f"stray tasks after shutdown: {others}"


async def test_url_is_known_only_after_start_and_non_loopback_needs_consent() -> None:
    with pytest.raises(TransportError, match="after start"):
        _ = EmbeddedBroker().url
    with pytest.raises(GraphError, match="allow_remote"):
        EmbeddedBroker("0.0.0.0")
    EmbeddedBroker("0.0.0.0", allow_remote=True)  # explicit consent is accepted


async def test_taken_port_is_a_transport_error() -> None:
    async with EmbeddedBroker() as first:
        with pytest.raises(TransportError, match="could not bind"):
            async with EmbeddedBroker(port=first.port):
                pass


def test_broker_url_parsing() -> None:
    a = parse_broker_url("mqtt://u%40x:p%3Aw@broker.lan")
    assert (a.host, a.port, a.tls, a.username, a.password) == ("broker.lan", 1883, False, "u@x", "p:w")
    assert parse_broker_url("mqtts://h:9000").url == "mqtts://h:9000"
    assert parse_broker_url("mqtts://h").port == 8883
    with pytest.raises(GraphError, match="mqtt://HOST"):
        parse_broker_url("http://h:1883")
    with pytest.raises(GraphError, match="bad port"):
        parse_broker_url("mqtt://h:99999")


async def test_broker_process_for_sync_launchers() -> None:
    proc = await asyncio.to_thread(start_embedded_broker_process)
    try:
        async with FleetClient(proc.url, "alice"), FleetClient(proc.url, "ops") as ops:
            assert (await ops.wait_for_agent("alice")).state == "online"
    finally:
        t0 = time.monotonic()
        code = await asyncio.to_thread(proc.stop)
        assert time.monotonic() - t0 < 1.5
    assert code == 0


async def test_broker_process_exits_when_its_parent_goes_away() -> None:
    proc = await asyncio.to_thread(start_embedded_broker_process)
    assert proc.proc.stdin is not None
    proc.proc.stdin.close()  # what the OS does when the launcher dies
    code = await asyncio.to_thread(proc.proc.wait, 5)
    assert code == 0
    proc.stop()
