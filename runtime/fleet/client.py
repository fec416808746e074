"""FleetClient: one agent's seat on the MQTT control plane (liveness, heartbeats, telemetry, commands).

Liveness follows [SCIENCE 5.1]: a retained `status` = online on every connect, a retained last
will = offline (fires only on an unclean disconnect, so a graceful exit publishes offline itself),
and heartbeats sent from the event loop: a blocked Python loop keeps its TCP connection (and MQTT
keepalives may even go on), so only missing application heartbeats reveal it [SCIENCE 1.1 [M]].
Observers declare an agent `stale` after `stale_after` missed heartbeat periods.

Commands are QoS 1, so they may arrive twice: each carries an id, the receiver runs a handler once
per (sender, id) and answers a duplicate with the cached reply (bounded LRU of `seen_ids`).
Commands are never retained and sessions are clean, so a reconnecting agent never replays them.
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
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..errors import CodecError, InputTimeoutError, TransportError
from . import protocol as p
from ._tasks import cancel_and_wait
from .mqtt import Incoming, LastWill, MqttLink

__all__ = [
    "DEPLOY",
    "STOP",
    "PING",
    "AgentInfo",
    "AgentChanged",
    "TelemetryReceived",
    "ReplyReceived",
    "ConnectionChanged",
    "FleetEvent",
    "FleetStats",
    "CommandHandler",
    "FleetClient",
]

log = logging.getLogger("edgeloop.fleet")

DEPLOY = "deploy"  #: body {"graph_yaml": str, "agent": str, "plan"?: dict}: run this agent's part
STOP = "stop"  #: body {}: stop the running part
PING = "ping"  #: body anything: answered by every FleetClient with {"pid", "host", "time"}

CommandHandler = Callable[[p.Command], Awaitable[Any]]


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


class FleetClient:
    """Join fleet `fleet` as `agent_name`: `async with FleetClient(url, "cam1") as fc: ...`.

    With mosquitto ACLs, `username` must equal `agent_name` (see README_control.md). Handlers
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
        self._handlers: dict[str, CommandHandler] = {PING: self._ping}
        self._agents: dict[str, AgentInfo] = {}
        self._pending: dict[str, asyncio.Future[p.Reply]] = {}
        self._seen: OrderedDict[tuple[str, str], p.Reply | None] = OrderedDict()
        self._seen_max = max(1, seen_ids)
        self._commands: asyncio.Queue[p.Command] = asyncio.Queue(maxsize=max(1, queue_size))
        self._events: asyncio.Queue[FleetEvent] = asyncio.Queue(maxsize=max(1, queue_size))
        self._tasks: list[asyncio.Task[None]] = []
        self._resends: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
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
        for coro in (self._route(), self._dispatch(), self._heartbeat(), self._watch_stale()):
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
        await cancel_and_wait([*self._tasks, *self._resends])
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
        return dict(self._agents)

    # -- commands -------------------------------------------------------------------------------

    def on_command(self, kind: str, handler: CommandHandler) -> None:
        """Run `handler(command)` for each command of `kind` (once per id); its result is the reply body."""
        self._handlers[kind] = handler

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
                    raise InputTimeoutError(
                        f"agent {agent!r} did not answer {kind!r} command {cid} within {timeout_s:g} s "
                        f"(its state: {self._agents[agent].state if agent in self._agents else 'never seen'})"
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
        deadline = time.monotonic() + timeout_s
        while True:
            info = self._agents.get(agent)
            if info is not None and info.state == state:
                return info
            left = deadline - time.monotonic()
            if left <= 0:
                raise InputTimeoutError(
                    f"agent {agent!r} not {state} within {timeout_s:g} s "
                    f"(last known: {info.state if info else 'never seen'})"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

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

    def _set_agent(self, name: str, info: AgentInfo) -> None:
        prev = self._agents.get(name)
        self._agents[name] = info
        if prev is None or prev.state != info.state:
            self._emit(AgentChanged(name, info.state, prev.state if prev else None, info))
            self._changed.set()  # wake every waiter, then re-arm for the next change
            self._changed = asyncio.Event()

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
                self._queue_command(p.decode_command(m.payload, t.agent))
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
        if t.kind == "status":
            if not m.payload:  # an empty retained payload clears the topic: forget the agent
                self._agents.pop(t.agent, None)
                return
            st = p.decode_status(m.payload)
            self._set_agent(
                t.agent,
                AgentInfo(t.agent, st.state, st.pid, st.host, now, now, st.heartbeat_s, st.reason, st.info),
            )
            return
        prev = self._agents.get(t.agent)
        if t.kind == "telemetry":
            self._emit(TelemetryReceived(t.agent, p.decode_telemetry(m.payload)))
        else:
            p.decode_heartbeat(m.payload)
        if prev is not None and prev.state != "offline":
            since = prev.since if prev.state == "online" else now
            self._set_agent(t.agent, replace(prev, state="online", last_seen=now, since=since))

    def _queue_command(self, cmd: p.Command) -> None:
        key = (cmd.sender, cmd.id)
        if key in self._seen:
            self.stats.commands_duplicate += 1
            cached = self._seen[key]
            if cached is not None:  # already answered: answer again, the first reply may be lost
                task = asyncio.create_task(self._reply(cmd.sender, cached))
                self._resends.add(task)
                task.add_done_callback(self._resends.discard)
            return
        if self._commands.full():
            self.stats.commands_dropped += 1  # the sender retries with the same id
            return
        self._seen[key] = None
        while len(self._seen) > self._seen_max:
            self._seen.popitem(last=False)
        self._commands.put_nowait(cmd)

    async def _dispatch(self) -> None:
        while True:
            cmd = await self._commands.get()
            handler = self._handlers.get(cmd.kind)
            if handler is None:
                rep = p.Reply(
                    cmd.id,
                    False,
                    None,
                    f"unknown command kind {cmd.kind!r} "
                    f"(this agent knows: {', '.join(sorted(self._handlers))})",
                    time.time(),
                )
            else:
                try:
                    rep = p.Reply(cmd.id, True, await handler(cmd), "", time.time())
                except Exception as exc:  # a handler failure becomes an error reply, not a dead agent
                    log.exception("command %s %r failed", cmd.id, cmd.kind)
                    rep = p.Reply(cmd.id, False, None, f"{type(exc).__name__}: {exc}", time.time())
            self.stats.commands_handled += 1
            key = (cmd.sender, cmd.id)
            if key in self._seen:
                self._seen[key] = rep
            await self._reply(cmd.sender, rep)

    async def _reply(self, to: str, rep: p.Reply) -> None:
        try:
            payload = p.encode(rep)
        except CodecError as exc:
            payload = p.encode(p.Reply(rep.id, False, None, f"reply not encodable: {exc}", rep.time))
        with contextlib.suppress(TransportError, InputTimeoutError):  # the sender will retry
            await self._link.publish(p.reply_topic(self.fleet, self.name, to), payload, qos=1)

    async def _ping(self, cmd: p.Command) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}

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

    async def _watch_stale(self) -> None:
        while True:
            periods = [a.heartbeat_s for a in self._agents.values()] + [self.heartbeat_s]
            await asyncio.sleep(max(0.02, min(periods) / 4))
            now = time.time()
            for a in list(self._agents.values()):
                if a.state == "online" and now - a.last_seen > self.stale_after * a.heartbeat_s:
                    self._set_agent(a.name, replace(a, state="stale", since=now))
