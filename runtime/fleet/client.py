"""FleetClient: one agent's seat on the MQTT control plane (liveness, heartbeats, telemetry, commands).

The liveness view is `liveness.Liveness`, command deduplication and replies `commands.CommandDesk`;
this module joins them to one broker link and adds what an agent sends: status, heartbeats,
telemetry, commands and requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, Literal

from ..errors import CodecError, InputTimeoutError, TransportError
from . import protocol as p
from ._tasks import cancel_and_wait
from .commands import DEPLOY, STOP, CommandDesk, CommandHandler
from .events import (
    AgentInfo,
    ConnectionChanged,
    FleetEvent,
    FleetStats,
    ReplyReceived,
    TelemetryReceived,
)
from .liveness import Liveness
from .mqtt import Incoming, LastWill, MqttLink

__all__ = ["FleetClient"]

log = logging.getLogger("edgeloop.fleet")


class FleetClient:
    """Join fleet `fleet` as `agent_name`: `async with FleetClient(url, "cam1") as fc: ...`.

    With mosquitto ACLs, `username` must equal `agent_name` (see docs/machines.md, "mosquitto for real fleets"). Handlers
    registered with `on_command(kind, handler)` run one at a time in arrival order; they should
    return quickly (start long work as a task) and their return value is the reply body.

    Parameters: `heartbeat_s` (own heartbeat period, announced in the status so observers use
    the sender's period), `stale_after` (missed periods before another agent is `stale`),
    `watch_telemetry` (also subscribe to every agent's telemetry, for dashboards/launchers),
    `queue_size` (bound of the command queue and of the event queue; the oldest event is dropped
    and counted in `stats`), `seen_ids` (command ids remembered for deduplication),
    `connect_timeout_s` (first connection), `reconnect_max_s` (backoff cap), `info` (extra
    fields in the retained status, e.g. role or version). `events()` has one consumer.
    """

    def __init__(
        self,
        url: str,
        agent_name: str,
        fleet: str = "default",
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        heartbeat_s: float = 1.0,
        stale_after: int = 3,
        watch_telemetry: bool = False,
        queue_size: int = 256,
        seen_ids: int = 1024,
        keepalive_s: int = 10,
        connect_timeout_s: float = 5.0,
        reconnect_max_s: float = 5.0,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = p.check_name("agent name", agent_name)
        self.fleet = p.check_name("fleet name", fleet)
        self.heartbeat_s = heartbeat_s
        self.stale_after = stale_after
        self.stats = FleetStats()
        self._info = dict(info or {})
        self._watch_telemetry = watch_telemetry
        self._liveness = Liveness(stale_after=stale_after, own_heartbeat_s=heartbeat_s, changed=self._emit)
        self._desk = CommandDesk(self.stats, self._send_reply, queue_size=queue_size, seen_ids=seen_ids)
        self._pending: dict[str, asyncio.Future[p.Reply]] = {}
        self._events: asyncio.Queue[FleetEvent] = asyncio.Queue(maxsize=max(1, queue_size))
        self._tasks: list[asyncio.Task[None]] = []
        self._hb_seq = 0
        self._tm_seq = 0
        self._online = self._status("online", "")
        will = LastWill(p.status_topic(self.fleet, self.name), p.encode(self._status("offline", "lost")))
        self._link = MqttLink(
            url,
            client_id=f"edgeloop-{self.fleet}-{self.name}-{uuid.uuid4().hex[:8]}",
            username=username,
            password=password,
            tls=tls,
            will=will,
            keepalive_s=keepalive_s,
            connect_timeout_s=connect_timeout_s,
            backoff_max_s=reconnect_max_s,
            inbox_size=4 * queue_size,
            on_connect=self._announce,
            on_state=lambda up, err: self._emit(ConnectionChanged(up, err)),
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FleetClient:
        f, me = self.fleet, self.name
        await self._link.subscribe(
            [
                (p.status_topic(f, "+"), 1),
                (p.heartbeat_topic(f, "+"), 0),
                (p.command_topic(f, "+", me), 1),
                (p.reply_topic(f, "+", me), 1),
                *([(p.telemetry_topic(f, "+"), 1)] if self._watch_telemetry else []),
            ]
        )
        await self._link.start()
        for coro in (self._route(), self._desk.run(), self._heartbeat(), self._liveness.watch()):
            self._tasks.append(asyncio.create_task(coro))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self, reason: str = "shutdown") -> None:
        """Publish a retained offline status (the will fires only on unclean exits), then disconnect."""
        if self._link.connected:
            with contextlib.suppress(TransportError, InputTimeoutError):
                await self._link.publish(
                    p.status_topic(self.fleet, self.name),
                    p.encode(self._status("offline", reason)),
                    qos=1,
                    retain=True,
                    timeout_s=1.0,
                )
        await cancel_and_wait([*self._tasks, *self._desk.resends])
        self._tasks.clear()
        await self._link.close()
        for fut in self._pending.values():
            fut.cancel()

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def broker_url(self) -> str:
        """The broker's URL without credentials."""
        return self._link.address.url

    @property
    def agents(self) -> dict[str, AgentInfo]:
        """The liveness view: every other agent seen in this fleet, by name (a copy)."""
        return self._liveness.agents

    # -- commands -------------------------------------------------------------------------------

    def on_command(self, kind: str, handler: CommandHandler) -> None:
        """Run `handler(command)` for each command of `kind` (once per id); its result is the reply body."""
        self._desk.on(kind, handler)

    async def send_command(
        self, agent: str, kind: str, body: Any = None, *, command_id: str | None = None
    ) -> str:
        """Send a command (QoS 1, never retained) and return its id; resend with the same id to retry."""
        cid = command_id or uuid.uuid4().hex
        cmd = p.Command(cid, kind, body, time.time())
        topic = p.command_topic(self.fleet, self.name, p.check_name("agent", agent))
        await self._link.publish(topic, p.encode(cmd), qos=1, retain=False)
        return cid

    async def request(
        self, agent: str, kind: str, body: Any = None, *, timeout_s: float = 5.0, retry_s: float | None = None
    ) -> p.Reply:
        """Send a command and wait for its reply, resending the same id every `retry_s` (safe: deduped)."""
        cid = uuid.uuid4().hex
        fut: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    known = self._liveness.get(agent)
                    raise InputTimeoutError(
                        f"agent {agent!r} did not answer {kind!r} command {cid} within {timeout_s:g} s "
                        f"(its state: {known.state if known else 'never seen'})"
                    )
                await self.send_command(agent, kind, body, command_id=cid)
                wait = left if retry_s is None else min(left, retry_s)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut), wait)
        finally:
            self._pending.pop(cid, None)

    async def deploy(
        self,
        agent: str,
        graph_yaml: str,
        part: str | None = None,
        *,
        plan: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> p.Reply:
        """Ask `agent` to run its part (`part`, default its own name) of the graph in `graph_yaml`.

        `plan` is the launcher's worker plan (wiring, overrides, incarnation; its graph text may be
        left empty: `graph_yaml` carries it), run by the agent's `run_plan`.
        """
        body: dict[str, Any] = {"graph_yaml": graph_yaml, "agent": part or agent}
        if plan is not None:
            body["plan"] = dict(plan)
        return await self.request(agent, DEPLOY, body, timeout_s=timeout_s, retry_s=min(1.0, timeout_s))

    async def stop_part(self, agent: str, *, timeout_s: float = 10.0) -> p.Reply:
        """Ask `agent` to stop its running part; the reply body carries the exit code."""
        return await self.request(agent, STOP, {}, timeout_s=timeout_s, retry_s=min(1.0, timeout_s))

    # -- telemetry and events -------------------------------------------------------------------

    async def publish_telemetry(self, data: Mapping[str, Any], *, timeout_s: float = 1.0) -> bool:
        """Publish telemetry at QoS 1; returns False (and counts a drop) when the broker is unreachable."""
        rec = p.Telemetry(self._tm_seq, time.time(), dict(data))
        self._tm_seq += 1
        try:
            await self._link.publish(
                p.telemetry_topic(self.fleet, self.name), p.encode(rec), qos=1, timeout_s=timeout_s
            )
            return True
        except (TransportError, InputTimeoutError):
            self.stats.telemetry_dropped += 1
            return False

    async def events(self) -> AsyncIterator[FleetEvent]:
        """Yield liveness changes, telemetry (if watched), unawaited replies and connection changes."""
        while True:
            yield await self._events.get()

    async def wait_for_agent(
        self, agent: str, state: p.AgentState = "online", *, timeout_s: float = 5.0
    ) -> AgentInfo:
        """Wait until `agent` is in `state` (checked on every status change), or raise InputTimeoutError."""
        return await self._liveness.wait_for(agent, state, timeout_s)

    # -- internals ------------------------------------------------------------------------------

    def _status(self, state: Literal["online", "offline"], reason: str) -> p.AgentStatus:
        return p.AgentStatus(
            state, os.getpid(), socket.gethostname(), time.time(), self.heartbeat_s, reason, self._info
        )

    async def _announce(self, link: MqttLink) -> None:
        await link.publish(
            p.status_topic(self.fleet, self.name),
            p.encode(replace(self._online, time=time.time())),
            qos=1,
            retain=True,
        )

    def _emit(self, ev: FleetEvent) -> None:
        if self._events.full():
            self._events.get_nowait()
            self.stats.events_dropped += 1
        self._events.put_nowait(ev)

    async def _route(self) -> None:
        async for m in self._link.messages():
            try:
                self._handle(m)
            except CodecError as exc:
                self.stats.malformed += 1
                log.warning("dropped malformed control message on %s: %s", m.topic, exc)

    def _handle(self, m: Incoming) -> None:
        t = p.parse_topic(m.topic)
        if t is None or t.fleet != self.fleet:
            return
        now = time.time()
        if t.kind == "cmd":
            if t.peer == self.name:
                self._desk.receive(p.decode_command(m.payload, t.agent))
            return
        if t.kind == "reply":
            rep = p.decode_reply(m.payload, t.agent)
            fut = self._pending.get(rep.id)
            if fut is not None and not fut.done():
                fut.set_result(rep)
            elif fut is None:
                self._emit(ReplyReceived(t.agent, rep))
            return
        if t.agent == self.name:
            return
        if t.kind == "status":  # an empty retained payload clears the topic: forget the agent
            self._liveness.on_status(t.agent, p.decode_status(m.payload) if m.payload else None, now)
            return
        if t.kind == "telemetry":
            self._emit(TelemetryReceived(t.agent, p.decode_telemetry(m.payload)))
        else:
            p.decode_heartbeat(m.payload)
        self._liveness.on_traffic(t.agent, now)

    async def _send_reply(self, to: str, payload: bytes) -> None:
        with contextlib.suppress(TransportError, InputTimeoutError):  # the sender will retry
            await self._link.publish(p.reply_topic(self.fleet, self.name, to), payload, qos=1)

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            lag_ms = max(0.0, (loop.time() - due) * 1e3)
            if self._link.connected:
                with contextlib.suppress(TransportError, InputTimeoutError):
                    hb = p.Heartbeat(self._hb_seq, time.time(), round(lag_ms, 3))
                    await self._link.publish(
                        p.heartbeat_topic(self.fleet, self.name),
                        p.encode(hb),
                        qos=0,
                        timeout_s=self.heartbeat_s,
                    )
                    self._hb_seq += 1
            due = max(due + self.heartbeat_s, loop.time())
            await asyncio.sleep(max(0.0, due - loop.time()))
