"""The launcher's end of the control channel: a ROUTER that workers' DEALERs connect to, each under an
identity only the holder of its agent's run secret can present; frames checked and decoded into control
messages (a bad or unproven one is counted and dropped), messages sent to agents by name."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import zmq
import zmq.asyncio

from .control import MAX_CONTROL_BYTES, ControlMessage, WorkerMessage, decode_from_worker, encode
from .errors import CodecError, TransportError
from .plan import routing_id
from .security import CurveServerAuth, configure_curve_server
from .wiring import LAUNCHER_KEY, Wiring

__all__ = ["Switchboard"]

log = logging.getLogger("edgeloop.launcher")
_DRAIN = 10_000  # messages handled per poll at most
_LOGGED = 10  # malformed frames logged one by one; then every 1000th


class Switchboard:
    """`bind(zctx)`, then `await poll(timeout_s, handle)` and `await send(agent, message)`; `close()`.

    Each agent has a random run secret (`secret(agent)`, handed to its workers in their plans); before
    starting an incarnation the launcher calls `admit(agent, incarnation)`, and only frames arriving
    under that incarnation's `routing_id` are accepted. `dropped` counts every other frame: from an
    identity no admitted incarnation has, a wrong number of frames, an undecodable or unknown body, a
    launcher's own kind, or an agent or incarnation other than the sender's.
    """

    def __init__(self, wiring: Wiring, keys_dir: Path) -> None:
        self.wiring = wiring
        self.keys_dir = keys_dir
        self.dropped = 0
        self._secrets: dict[str, bytes] = {}
        self._ids: dict[bytes, tuple[str, int]] = {}  # every admitted identity -> (agent, incarnation)
        self._current: dict[str, bytes] = {}  # agent -> its latest incarnation's identity
        self._sock: zmq.asyncio.Socket | None = None
        self._auth: CurveServerAuth | None = None

    @property
    def sock(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            raise TransportError("the launcher's control socket is not bound (Switchboard.bind first)")
        return self._sock

    def secret(self, agent: str) -> str:
        """Agent `agent`'s run secret (hex), made on first use: it goes into the agent's plans only."""
        if agent not in self._secrets:
            self._secrets[agent] = secrets.token_bytes(32)
        return self._secrets[agent].hex()

    def admit(self, agent: str, incarnation: int) -> None:
        """Accept messages from `agent`'s incarnation `incarnation` (and send to it) from now on."""
        ident = routing_id(bytes.fromhex(self.secret(agent)), agent, incarnation)
        self._ids[ident] = (agent, incarnation)
        self._current[agent] = ident

    def bind(self, zctx: zmq.asyncio.Context) -> None:
        """ipc on one host; tcp + CURVE (the launcher's key pair) when agents run elsewhere."""
        s, w = zctx.socket(zmq.ROUTER), self.wiring
        self._sock = s
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A worker reconnecting (tcp) takes its identity over from its dead link; a peer without the
        # agent's secret cannot name that identity, so it cannot take one over.
        s.setsockopt(zmq.ROUTER_HANDOVER, 1)
        s.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_BYTES)
        if w.control.startswith("tcp://"):
            s.setsockopt(zmq.HEARTBEAT_IVL, 1000)
            s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
            if w.curve:
                self._auth = configure_curve_server(
                    s, self.keys_dir / f"{LAUNCHER_KEY}.key_secret", self.keys_dir
                )
        s.bind(w.bind.get(w.control, w.control))

    async def send(self, agent: str, msg: ControlMessage) -> None:
        """Send `msg` to agent `agent`'s worker (`zmq.ZMQError` if it is not connected)."""
        await self.sock.send_multipart([self._current.get(agent, agent.encode()), encode(msg)])

    async def poll(self, timeout_s: float, handle: Callable[[str, WorkerMessage], Awaitable[None]]) -> None:
        """Wait up to `timeout_s` for messages, then hand each waiting one to `handle(agent, message)`."""
        if not await self.sock.poll(int(timeout_s * 1000)):
            return
        for _ in range(_DRAIN):  # drain what has arrived, bounded
            frames = await self.sock.recv_multipart()
            try:
                name, msg = _split(frames, self._ids)
            except CodecError as exc:  # a peer's bad frame is counted and dropped, never fatal
                self.dropped += 1
                if self.dropped <= _LOGGED or self.dropped % 1000 == 0:
                    log.warning("dropped malformed control message #%d: %s", self.dropped, exc)
            else:
                await handle(name, msg)
            if not await self.sock.poll(0):
                return

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._auth is not None:  # after the CURVE server socket: a pending handshake would block term()
            self._auth.close()
            self._auth = None


def _split(frames: list[bytes], ids: dict[bytes, tuple[str, int]]) -> tuple[str, WorkerMessage]:
    # A worker's DEALER sends one frame; the ROUTER puts the sender's identity first. The identity is
    # checked before the body is decoded: an unproven peer costs a dict lookup, not a decode.
    sender = ids.get(frames[0])
    if sender is None:
        raise CodecError(
            f"a control message from identity {frames[0][:48]!r}, which no agent's run secret gives "
            "(a peer posing as an agent, or a worker of another run)"
        )
    if len(frames) != 2:
        raise CodecError(f"a control message is [identity, body], not {len(frames)} frame(s)")
    (name, incarnation), msg = sender, decode_from_worker(frames[1])
    if msg.agent != name or msg.incarnation != incarnation:
        raise CodecError(
            f"a message naming agent '{msg.agent}' incarnation {msg.incarnation} came from '{name}' "
            f"incarnation {incarnation}"
        )
    return name, msg
