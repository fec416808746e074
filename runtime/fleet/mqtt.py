"""The one adapter over aiomqtt 2.x: a self-reconnecting MQTT link with a bounded inbox.

Nothing else in edgeloop imports aiomqtt, so the move to aiomqtt 3 (MQTT 5 only, manual PUBACK,
built-in reconnect [SCIENCE 5.1, aiomqtt docs/migration-v3.md]) touches this file alone.

aiomqtt 2.x leaves reconnecting to the user ("a loop over MqttError") and its incoming queue is
unbounded by default [SCIENCE 5.1]; `MqttLink` adds both: a supervisor task reconnects with
capped exponential backoff, re-subscribes, re-runs `on_connect` (which re-announces liveness),
and a reader moves messages into a bounded inbox that drops the *oldest* and counts every drop.
A refused CONNECT (bad credentials, not authorised) is final and raised, not retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from ..errors import GraphError, InputTimeoutError, TransportError
from ._tasks import cancel_and_wait

__all__ = ["BrokerAddress", "LastWill", "Incoming", "LinkStats", "MqttLink", "parse_broker_url"]

log = logging.getLogger("edgeloop.mqtt")

# CONNACK codes that no retry can fix: MQTT 3.1.1 return codes 4 and 5, MQTT 5 reason codes 0x86/0x87.
_FATAL_CONNACK = {4, 5, 134, 135}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A parsed broker URL: `mqtt://[user[:password]@]host[:port]` or `mqtts://...` (TLS)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The URL without credentials (safe to log)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse a broker URL; errors say what a valid one looks like."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
        raise GraphError(
            f"broker URL {url!r} is not valid: use mqtt://HOST[:PORT] (or mqtts:// for TLS), "
            "e.g. mqtt://127.0.0.1:1883"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise GraphError(f"broker URL {url!r} has a bad port: {exc}") from exc
    user = unquote(parts.username) if parts.username else None
    pw = unquote(parts.password) if parts.password else None
    return BrokerAddress(parts.hostname, port, tls, user, pw)


@dataclass(frozen=True, slots=True)
class LastWill:
    """The message the broker publishes for us if we vanish without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Incoming:
    """One received MQTT message."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(slots=True)
class LinkStats:
    """Counters for what the link did; `inbox_dropped` counts messages lost to a full inbox."""

    connects: int = 0
    disconnects: int = 0
    inbox_dropped: int = 0
    received: int = 0
    published: int = 0


class MqttLink:
    """An MQTT connection that stays up: `async with MqttLink(url) as link: await link.publish(...)`.

    `__aenter__` waits up to `connect_timeout_s` for the first connection and raises
    `TransportError` if none comes (or at once when the broker refuses the credentials).
    Afterwards the link reconnects by itself with backoff from `backoff_initial_s` doubling up to
    `backoff_max_s`; `on_connect(link)` runs after every (re)connect, before publishers resume.
    Clean sessions only: nothing queued for us while we are away is replayed on reconnect (a
    robot must not act on stale commands [SCIENCE 5.1]).
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        will: LastWill | None = None,
        keepalive_s: int = 10,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        inbox_size: int = 1000,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        on_connect: Callable[[MqttLink], Awaitable[None]] | None = None,
        on_state: Callable[[bool, str | None], None] | None = None,
    ) -> None:
        self.address = parse_broker_url(url)
        self.client_id = client_id or f"edgeloop-{uuid.uuid4().hex[:12]}"
        self._username = username if username is not None else self.address.username
        self._password = password if password is not None else self.address.password
        if tls is True or (tls is None and self.address.tls):
            tls = ssl.create_default_context()
        self._tls: ssl.SSLContext | None = tls or None
        self._will = will
        self._keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._on_connect = on_connect
        self._on_state = on_state
        self._inbox: asyncio.Queue[Incoming] = asyncio.Queue(maxsize=max(1, inbox_size))
        self._subscriptions: dict[str, int] = {}
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._first: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = LinkStats()
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def __aenter__(self) -> MqttLink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the supervisor and wait for the first connection (see the class docstring)."""
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(), name=f"mqtt-link-{self.client_id}")
        try:
            await asyncio.wait_for(asyncio.shield(self._first), self._connect_timeout_s)
        except TimeoutError:
            await self.close()
            raise TransportError(
                f"could not connect to the MQTT broker at {self.address.url} within "
                f"{self._connect_timeout_s:g} s (last error: {self.last_error or 'none'}); is it running? "
                "`edgeloop run` starts an embedded one, or give --broker mqtt://HOST:PORT"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self, timeout_s: float = 1.0) -> None:
        """Disconnect gracefully (so no last will fires) and stop the supervisor."""
        self._closing.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            await cancel_and_wait([task])
        except Exception:  # already reported through last_error or the first-connect future
            pass
        if self._first is not None and self._first.done() and not self._first.cancelled():
            self._first.exception()  # mark retrieved: an unconnected close is not an error

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until the link is up, or raise InputTimeoutError naming the broker."""
        t = self.timeout_s if timeout_s is None else timeout_s
        try:
            await asyncio.wait_for(self._connected.wait(), t)
        except TimeoutError:
            raise InputTimeoutError(
                f"MQTT broker {self.address.url} not connected within {t:g} s "
                f"(last error: {self.last_error or 'none'})"
            ) from None

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        """Publish once the link is up; QoS 1/2 waits for the broker's acknowledgement."""
        t = self.timeout_s if timeout_s is None else timeout_s
        await self.wait_connected(t)
        client = self._client
        if client is None:
            raise TransportError(f"MQTT link to {self.address.url} dropped while publishing to {topic!r}")
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=t)
        except aiomqtt.MqttError as exc:
            raise TransportError(f"publish to {topic!r} on {self.address.url} failed: {exc}") from exc
        self.stats.published += 1

    async def subscribe(self, filters: Sequence[tuple[str, int]]) -> None:
        """Subscribe now (if connected) and again after every reconnect; a refusal raises TransportError."""
        for topic, qos in filters:
            self._subscriptions[topic] = qos
        client = self._client
        if client is not None and self.connected:
            await self._subscribe(client, list(filters))

    async def messages(self) -> AsyncIterator[Incoming]:
        """Yield received messages until the link closes (one consumer only)."""
        while True:
            if not self._inbox.empty():
                yield self._inbox.get_nowait()
                continue
            if self._closing.is_set():
                return
            getter = asyncio.ensure_future(self._inbox.get())
            closer = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closer.cancel()
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()

    # -- internals ------------------------------------------------------------------------------

    async def _subscribe(self, client: aiomqtt.Client, filters: list[tuple[str, int]]) -> None:
        if not filters:
            return
        granted = await client.subscribe(filters, timeout=self.timeout_s)
        refused = [t for (t, _), g in zip(filters, granted, strict=False) if _code(g) >= 0x80]
        if refused:
            raise TransportError(
                f"broker {self.address.url} refused subscription(s) {refused} for user "
                f"{self._username!r}: check its ACL (agents may read their fleet only)"
            )

    def _make_client(self) -> aiomqtt.Client:
        will = None
        if self._will is not None:
            w = self._will
            will = aiomqtt.Will(w.topic, w.payload, w.qos, w.retain)
        return aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self._username,
            password=self._password,
            identifier=self.client_id,
            will=will,
            clean_session=True,
            keepalive=self._keepalive_s,
            timeout=self.timeout_s,
            tls_context=self._tls,
            logger=log,
            # Small control messages must not wait for Nagle + delayed ACK (~40 ms per hop).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )

    async def _supervise(self) -> None:
        delay = self._backoff[0]
        while not self._closing.is_set():
            try:
                async with self._make_client() as client:
                    await self._session(client)
                    delay = self._backoff[0]
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                if isinstance(exc, MqttConnectError) and _code(exc.rc) in _FATAL_CONNACK:
                    err = TransportError(
                        f"MQTT broker {self.address.url} refused user {self._username!r}: {exc} "
                        "(check the username/password and the broker's ACL)"
                    )
                    self._resolve_first(err)
                    return
                log.info("MQTT link to %s lost: %s; retrying in %.1f s", self.address.url, exc, delay)
            except TransportError as exc:  # e.g. a refused subscription in on_connect: not retryable
                self.last_error = str(exc)
                self._resolve_first(exc)
                return
            finally:
                if self._connected.is_set():
                    self._connected.clear()
                    self.stats.disconnects += 1
                    self._notify(False, self.last_error)
                self._client = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, self._backoff[1])

    async def _session(self, client: aiomqtt.Client) -> None:
        self._client = client
        reader = asyncio.create_task(self._read(client))
        try:
            await self._subscribe(client, list(self._subscriptions.items()))
            self._connected.set()  # on_connect may publish
            if self._on_connect is not None:
                await self._on_connect(self)
            self.stats.connects += 1
            self.last_error = None
            self._resolve_first(None)
            self._notify(True, None)
            closer = asyncio.create_task(self._closing.wait())
            try:
                await asyncio.wait({reader, closer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closer.cancel()
            if reader.done():
                reader.result()  # re-raise the MqttError that ended the session
        finally:
            await cancel_and_wait([reader])

    async def _read(self, client: aiomqtt.Client) -> None:
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes | bytearray) else str(m.payload or "").encode()
            item = Incoming(m.topic.value, bytes(payload), int(m.qos), bool(m.retain))
            self.stats.received += 1
            if self._inbox.full():  # keep the newest: drop the oldest and count it
                self._inbox.get_nowait()
                self.stats.inbox_dropped += 1
            self._inbox.put_nowait(item)

    def _resolve_first(self, err: BaseException | None) -> None:
        if self._first is not None and not self._first.done():
            if err is None:
                self._first.set_result(None)
            else:
                self._first.set_exception(err)

    def _notify(self, up: bool, error: str | None) -> None:
        if self._on_state is not None:
            try:
                self._on_state(up, error)
            except Exception:  # a faulty observer must not take the link down
                log.exception("MQTT link state callback failed")


def _code(rc: Any) -> int:
    return int(getattr(rc, "value", rc) if rc is not None else -1)
