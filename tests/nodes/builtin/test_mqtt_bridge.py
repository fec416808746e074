"""mqtt.publish / mqtt.subscribe through NodeHarness against the embedded broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from nodes.builtin.mqtt import MqttPublish, MqttSubscribe
from runtime.errors import GraphError
from runtime.fleet.broker import EmbeddedBroker
from runtime.fleet.mqtt import MqttLink
from runtime.fleet.payload import decode_payload, encode_payload
from runtime.testing import NodeHarness


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as b:
        yield b


async def test_publish_fills_the_topic_template_and_encodes_arrays(broker: EmbeddedBroker) -> None:
    params = {"url": broker.url, "topic": "fleet/{node}/{port}/{seq}", "qos": 1, "encoding": "json"}
    async with MqttLink(broker.url) as dash:
        await dash.subscribe([("fleet/#", 1)])
        async with NodeHarness(MqttPublish, params, node_id="cam") as h:
            await h.send("pose", {"x": 1.5, "img": np.eye(2, dtype=np.float32)}, t_sense_ns=123)
            await h.send("pose", {"x": 2.5, "img": np.zeros((2, 2), np.float32)})
        msgs = [await asyncio.wait_for(anext(dash.messages()), 5.0) for _ in range(2)]
    assert [m.topic for m in msgs] == ["fleet/cam/pose/0", "fleet/cam/pose/1"]
    first = decode_payload(msgs[0].payload, "json")
    assert first["t_sense_ns"] == 123 and first["seq"] == 0 and first["payload"]["x"] == 1.5
    np.testing.assert_array_equal(first["payload"]["img"], np.eye(2, dtype=np.float32))
    assert h.ctx.counters["mqtt_published"] == 2


async def test_subscribe_emits_messages_and_keeps_sensing_time(broker: EmbeddedBroker) -> None:
    params = {"url": broker.url, "topics": ["fleet/+/pose"], "qos": 1}
    async with NodeHarness(MqttSubscribe, params, node_id="in") as sub:  # subscribed once setup returns
        async with NodeHarness(
            MqttPublish, {"url": broker.url, "topic": "fleet/{node}/{port}", "qos": 1}, node_id="cam"
        ) as pub:
            for i in range(3):
                await pub.send("pose", np.full(3, i, np.int16), t_sense_ns=1000 + i)
        async with MqttLink(broker.url) as other:  # a foreign system, no envelope, plain msgpack
            await other.publish("fleet/robot/pose", encode_payload({"v": 7}, "msgpack"), qos=1)
        await sub.run_source(max_messages=4, timeout_s=5.0)
    out = sub.outputs["message"]
    assert [m.payload["topic"] for m in out] == ["fleet/cam/pose"] * 3 + ["fleet/robot/pose"]
    assert [int(m.payload["payload"][0]) for m in out[:3]] == [0, 1, 2]
    assert [m.t_sense_ns for m in out[:3]] == [1000, 1001, 1002]  # latency survives the bridge
    assert out[3].payload["payload"] == {"v": 7}


async def test_undecodable_messages_are_counted_not_fatal(broker: EmbeddedBroker) -> None:
    params = {"url": broker.url, "topics": ["x/#"], "encoding": "json"}
    async with NodeHarness(MqttSubscribe, params) as sub:
        async with MqttLink(broker.url) as other:
            await other.publish("x/a", b"\xff garbage", qos=1)
            await other.publish("x/b", b"[1, 2]", qos=1)
        await sub.run_source(max_messages=1, timeout_s=5.0)
    assert sub.payloads("message") == [{"topic": "x/b", "payload": [1, 2]}]
    assert sub.ctx.counters["mqtt_decode_errors"] == 1


async def test_url_defaults_to_the_runtime_broker_env(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_BROKER_URL", broker.url)
    async with NodeHarness(MqttPublish, {}) as h:
        await h.send("x", 1)
    assert h.ctx.counters["mqtt_published"] == 1


async def test_misconfiguration_is_a_graph_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGELOOP_BROKER_URL", raising=False)
    with pytest.raises(GraphError, match="EDGELOOP_BROKER_URL is empty"):
        async with NodeHarness(MqttPublish, {}):
            pass
    with pytest.raises(GraphError, match="may use only"):
        async with NodeHarness(MqttPublish, {"url": "mqtt://127.0.0.1:1", "topic": "a/{oops}"}):
            pass
    with pytest.raises(GraphError, match="no MQTT wildcards"):
        async with NodeHarness(MqttPublish, {"url": "mqtt://127.0.0.1:1", "topic": "a/#"}):
            pass
    with pytest.raises(GraphError, match="SECRET_PW"):
        async with NodeHarness(
            MqttSubscribe, {"url": "mqtt://h", "topics": ["a"], "password_env": "SECRET_PW"}
        ):
            pass


async def test_lost_broker_costs_counted_drops_not_a_stall() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    async with NodeHarness(MqttPublish, {"url": broker.url, "qos": 1, "timeout_ms": 100}) as h:
        await h.send("x", 1)
        await broker.stop()
        for _ in range(3):
            await asyncio.wait_for(h.send("x", 2), 2.0)
    assert h.ctx.counters["mqtt_published"] >= 1
    assert h.ctx.counters["mqtt_published"] + h.ctx.counters["mqtt_dropped"] == 4
