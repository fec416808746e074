"""MQTT bridge nodes: `mqtt.publish` sends any edge to a broker, `mqtt.subscribe` brings topics into a graph."""

from __future__ import annotations

import os
import string
from typing import Any, Literal

from pydantic import Field

from runtime.errors import CodecError, GraphError, InputTimeoutError, TransportError
from runtime.fleet.broker import BROKER_URL_ENV
from runtime.fleet.mqtt import MqttLink
from runtime.fleet.payload import decode_payload, encode_payload
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["MqttPublish", "MqttSubscribe"]

_TOPIC_FIELDS = {"node", "port", "seq"}


class _BrokerParams(NodeParams):
    url: str | None = None  # default: $EDGELOOP_BROKER_URL (the runtime's embedded broker sets it)
    username: str | None = None
    password_env: str | None = None  # name of the env variable holding the password (never in graphs)
    qos: Literal[0, 1, 2] = 0
    encoding: Literal["msgpack", "json"] = "msgpack"
    envelope: bool = True  # wrap as {topic, seq, t_sense_ns, t_emit_ns, payload} (keeps latency)
    connect_timeout_ms: int = Field(5000, gt=0)


def _link(node_id: str, p: _BrokerParams, **kw: Any) -> MqttLink:
    url = p.url or os.environ.get(BROKER_URL_ENV)
    if not url:
        raise GraphError(
            f"node {node_id!r}: params.url is not set and ${BROKER_URL_ENV} is empty; "
            "give url: mqtt://HOST:PORT or run under `edgeloop run` (embedded broker)"
        )
    password = os.environ.get(p.password_env) if p.password_env else None
    if p.password_env and password is None:
        raise GraphError(f"node {node_id!r}: params.password_env names ${p.password_env}, which is not set")
    return MqttLink(
        url, username=p.username, password=password, connect_timeout_s=p.connect_timeout_ms / 1e3, **kw
    )


class MqttPublish(Node):
    """Publish every input message to `topic` (fields {node}, {port}, {seq}); failures are counted drops."""

    dynamic_inputs = True

    class Params(_BrokerParams):
        topic: str = "edgeloop/{node}/{port}"
        retain: bool = False
        timeout_ms: int = Field(1000, gt=0)  # per publish; a slower broker costs a counted drop

    async def setup(self, ctx: Context) -> None:
        self.ctx, p = ctx, ctx.params
        used = {f for _, f, _, _ in string.Formatter().parse(p.topic) if f is not None}
        if used - _TOPIC_FIELDS or "+" in p.topic or "#" in p.topic or not p.topic:
            raise GraphError(
                f"node {ctx.node_id!r}: params.topic {p.topic!r} may use only {{node}}, {{port}}, "
                "{seq} and no MQTT wildcards (+, #)"
            )
        self.link = _link(ctx.node_id, p)
        await self.link.start()

    async def on_input(self, port: str, msg: Message) -> None:
        p = self.ctx.params
        topic = p.topic.format(node=self.ctx.node_id, port=port, seq=msg.seq)
        body = msg.payload
        if p.envelope:
            body = {
                "topic": msg.topic,
                "seq": msg.seq,
                "t_sense_ns": msg.t_sense_ns,
                "t_emit_ns": msg.t_emit_ns,
                "payload": msg.payload,
            }
        try:
            data = encode_payload(body, p.encoding)
            await self.link.publish(topic, data, qos=p.qos, retain=p.retain, timeout_s=p.timeout_ms / 1e3)
            self.ctx.counter("mqtt_published")
        except CodecError as exc:
            self.ctx.counter("mqtt_encode_errors")
            self.ctx.log.warning("not published to %s: %s", topic, exc)
        except (TransportError, InputTimeoutError):
            self.ctx.counter("mqtt_dropped")

    async def teardown(self) -> None:
        if hasattr(self, "link"):
            await self.link.close()


class MqttSubscribe(Node):
    """Emit each message on `topics` as {"topic": mqtt_topic, "payload": decoded} on output `message`."""

    outputs = ("message",)

    class Params(_BrokerParams):
        topics: list[str] = Field(min_length=1)
        queue: int = Field(1000, gt=0)  # inbox depth; when full the oldest is dropped and counted

    async def setup(self, ctx: Context) -> None:
        self.ctx, self._dropped = ctx, 0
        self.link = _link(ctx.node_id, ctx.params, inbox_size=ctx.params.queue)
        await self.link.subscribe([(t, ctx.params.qos) for t in ctx.params.topics])
        await self.link.start()

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        async for m in self.link.messages():
            try:
                body = decode_payload(m.payload, p.encoding)
            except CodecError as exc:
                ctx.counter("mqtt_decode_errors")
                ctx.log.warning("dropped undecodable message on %s: %s", m.topic, exc)
                continue
            t_sense = None
            if p.envelope and isinstance(body, dict) and "payload" in body and "t_sense_ns" in body:
                t_sense, body = int(body["t_sense_ns"]), body["payload"]
            if (dropped := self.link.stats.inbox_dropped) > self._dropped:
                ctx.counter("mqtt_inbox_dropped", dropped - self._dropped)
                self._dropped = dropped
            await ctx.emit("message", {"topic": m.topic, "payload": body}, t_sense=t_sense)
            if ctx.stop_event.is_set():
                return

    async def teardown(self) -> None:
        if hasattr(self, "link"):
            await self.link.close()
