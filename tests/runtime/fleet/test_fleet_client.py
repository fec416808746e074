"""FleetClient against the embedded amqtt broker and a real mosquitto: liveness, wills, commands, telemetry."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest
from control_helpers import FLEET, BrokerUnderTest, reap, start_child

from runtime.errors import InputTimeoutError, TransportError
from runtime.fleet.broker import EmbeddedBroker
from runtime.fleet.client import FleetClient
from runtime.fleet.events import (
    AgentChanged,
    ConnectionChanged,
    FleetEvent,
    ReplyReceived,
    TelemetryReceived,
)
from runtime.fleet.mqtt import MqttLink
from runtime.fleet.protocol import Command, command_topic


def client(b: BrokerUnderTest, name: str, **kw: Any) -> FleetClient:
    return FleetClient(b.url, name, FLEET, **b.creds(name), **kw)


async def next_event(
    fc: FleetClient, pred: Callable[[FleetEvent], bool], timeout_s: float = 5.0
) -> FleetEvent:
    async def scan() -> FleetEvent:
        async for ev in fc.events():
            if pred(ev):
                return ev
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(scan(), timeout_s)


async def test_online_then_graceful_offline(broker: BrokerUnderTest) -> None:
    async with client(broker, "ops") as ops:
        async with client(broker, "alice", info={"role": "camera"}):
            info = await ops.wait_for_agent("alice", "online")
            assert info.pid > 0 and info.host and info.info == {"role": "camera"}
        info = await ops.wait_for_agent("alice", "offline")
        assert info.reason == "shutdown"  # published by the client itself, not the will
        states = []
        while not ops._events.empty():
            ev = ops._events.get_nowait()
            if isinstance(ev, AgentChanged):
                states.append((ev.agent, ev.previous, ev.state))
        assert states == [("alice", None, "online"), ("alice", "online", "offline")]


async def test_late_observer_sees_retained_status(broker: BrokerUnderTest) -> None:
    async with client(broker, "alice"), client(broker, "ops") as ops:
        assert (await ops.wait_for_agent("alice", "online")).state == "online"


async def test_last_will_fires_when_agent_is_killed(broker: BrokerUnderTest) -> None:
    async with client(broker, "ops") as ops:
        proc = await start_child(broker.url, "child", creds=broker.creds("child"))
        try:
            await ops.wait_for_agent("child", "online")
            proc.send_signal(signal.SIGKILL)
            info = await ops.wait_for_agent("child", "offline", timeout_s=5.0)
            assert info.reason == "lost"  # the broker published the retained will
        finally:
            await reap(proc)


async def test_hung_agent_is_declared_stale(broker: BrokerUnderTest) -> None:
    async with client(broker, "ops", heartbeat_s=0.1, stale_after=3) as ops:
        proc = await start_child(broker.url, "hung", "--heartbeat-s", "0.1", creds=broker.creds("hung"))
        try:
            await ops.wait_for_agent("hung", "online")
            assert proc.stdin is not None
            proc.stdin.write(b"hang\n")
            await proc.stdin.drain()
            info = await ops.wait_for_agent("hung", "stale", timeout_s=3.0)
            assert info.state == "stale"  # still connected: no will, only missing heartbeats tell
        finally:
            await reap(proc)


async def test_duplicate_command_runs_handler_once(broker: BrokerUnderTest) -> None:
    calls: list[Command] = []

    async def handler(cmd: Command) -> dict[str, Any]:
        calls.append(cmd)
        return {"n": len(calls)}

    async with client(broker, "alice") as alice, client(broker, "ops") as ops:
        alice.on_command("count", handler)
        await ops.wait_for_agent("alice")
        for _ in range(2):  # QoS 1 may deliver twice; so may a retrying sender
            await ops.send_command("alice", "count", {"x": 1}, command_id="cmd-1")
        replies = [await next_event(ops, lambda e: isinstance(e, ReplyReceived)) for _ in range(2)]
        reply = await ops.request("alice", "count", {}, timeout_s=3.0, retry_s=0.05)
    assert [r.reply.body for r in replies] == [{"n": 1}, {"n": 1}]  # the duplicate got the cached reply
    assert all(r.reply.ok and r.agent == "alice" for r in replies)
    assert reply.ok and reply.body == {"n": 2}  # retries with one id ran the handler once
    assert [c.id for c in calls][0] == "cmd-1" and len(calls) == 2
    assert calls[0].sender == "ops"
    assert alice.stats.commands_handled == 2


async def test_command_errors_become_error_replies(broker: BrokerUnderTest) -> None:
    async def boom(cmd: Command) -> None:
        raise ValueError("boom")

    async with client(broker, "alice") as alice, client(broker, "ops") as ops:
        alice.on_command("boom", boom)
        await ops.wait_for_agent("alice")
        unknown = await ops.request("alice", "fly", timeout_s=3.0)
        failed = await ops.request("alice", "boom", timeout_s=3.0)
        ping = await ops.request("alice", "ping", timeout_s=3.0)
    assert not unknown.ok and "unknown command kind 'fly'" in unknown.error and "boom" in unknown.error
    assert not failed.ok and failed.error == "ValueError: boom"
    assert ping.ok and ping.body["pid"] > 0


async def test_telemetry_at_10hz_qos1_loses_nothing(broker: BrokerUnderTest) -> None:
    n = 20  # 2 s at 10 Hz
    async with client(broker, "ops", watch_telemetry=True) as ops, client(broker, "alice") as alice:
        await ops.wait_for_agent("alice")
        for i in range(n):
            assert await alice.publish_telemetry({"rate_hz": 10.0, "drops": 0, "i": i})
            await asyncio.sleep(0.1)  # pacing at 10 Hz, not synchronisation
        seqs = []
        while len(seqs) < n:
            ev = await next_event(ops, lambda e: isinstance(e, TelemetryReceived), timeout_s=3.0)
            assert isinstance(ev, TelemetryReceived)
            seqs.append(ev.telemetry.seq)
            assert ev.telemetry.data["i"] == ev.telemetry.seq
    assert seqs == list(range(n))
    assert alice.stats.telemetry_dropped == 0 and ops.stats.events_dropped == 0


async def test_request_to_unknown_agent_times_out() -> None:
    async with EmbeddedBroker() as b, FleetClient(b.url, "ops") as ops:
        with pytest.raises(InputTimeoutError, match="never seen"):
            await ops.request("nobody", "ping", timeout_s=0.3)


async def test_seen_ids_are_bounded_and_malformed_input_counted() -> None:
    async with EmbeddedBroker() as b:
        async with FleetClient(b.url, "alice", seen_ids=4) as alice, FleetClient(b.url, "ops") as ops:
            await ops.wait_for_agent("alice")
            for _ in range(10):
                assert (await ops.request("alice", "ping", timeout_s=3.0)).ok
            assert alice._desk.remembered == 4
            async with MqttLink(b.url) as raw:  # garbage on alice's command topic, "sent" by mallory
                await raw.publish(command_topic("default", "mallory", "alice"), b"\xff not json", qos=1)
                await raw.publish(
                    command_topic("default", "mallory", "alice"),
                    b'{"id":"x","kind":"k","sender":"ops"}',
                    qos=1,
                )
            assert (await ops.request("alice", "ping", timeout_s=3.0)).ok  # still serving
            assert alice.stats.malformed == 2


async def test_reconnects_and_reannounces_after_broker_restart() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    port = broker.port
    try:
        async with FleetClient(broker.url, "alice", connect_timeout_s=2.0) as alice:
            await broker.stop()
            await next_event(alice, lambda e: isinstance(e, ConnectionChanged) and not e.connected)
            assert not await alice.publish_telemetry({"x": 1}, timeout_s=0.05)
            broker = EmbeddedBroker(port=port)
            await broker.start()
            await next_event(alice, lambda e: isinstance(e, ConnectionChanged) and e.connected, timeout_s=8.0)
            async with FleetClient(broker.url, "ops") as ops:
                assert (await ops.wait_for_agent("alice", "online")).state == "online"
                assert (await ops.request("alice", "ping", timeout_s=3.0)).ok
            assert alice.stats.telemetry_dropped == 1
    finally:
        await broker.stop()


async def test_unreachable_broker_raises_transport_error() -> None:
    b = EmbeddedBroker()
    await b.start()
    url = b.url
    await b.stop()
    with pytest.raises(TransportError, match="could not connect"):
        async with FleetClient(url, "alice", connect_timeout_s=0.5):
            pass
