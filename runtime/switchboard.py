"""The launcher's end of the control channel: a ROUTER that workers' DEALERs connect to, frames checked and
decoded into control messages (a bad one is counted and dropped), messages sent to agents by name."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import zmq
import zmq.asyncio

from .control import ControlMessage, WorkerMessage, decode_from_worker, encode
from .errors import CodecError, TransportError
from .security import CurveServerAuth, configure_curve_server
from .wiring import LAUNCHER_KEY, Wiring

__all__ = ["Switchboard"]

log = logging.getLogger("edgeloop.launcher")
_DRAIN = 10_000  # messages handled per poll at most
_LOGGED = 10  # malformed frames logged one by one; then every 1000th


class Switchboard:
    """`bind(zctx)`, then `await poll(timeout_s, handle)` and `await send(agent, message)`; `close()`.

    `dropped` counts frames that were not a worker's control message: a wrong number of frames, an
    undecodable or unknown body, a launcher's own kind, or an agent name other than the sender's.
    """

    def __init__(self, wiring: Wiring, keys_dir: Path) -> None:
        self.wiring = wiring
        self.keys_dir = keys_dir
        self.dropped = 0
        self._sock: zmq.asyncio.Socket | None = None
        self._auth: CurveServerAuth | None = None

    @property
    def sock(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            raise TransportError("the launcher's control socket is not bound (Switchboard.bind first)")
        return self._sock

    def bind(self, zctx: zmq.asyncio.Context) -> None:
        """ipc on one host; tcp + CURVE (the launcher's key pair) when agents run elsewhere."""
        s, w = zctx.socket(zmq.ROUTER), self.wiring
        self._sock = s
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)
        s.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted worker takes its name over from a dead link
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
        await self.sock.send_multipart([agent.encode(), encode(msg)])

    async def poll(self, timeout_s: float, handle: Callable[[str, WorkerMessage], Awaitable[None]]) -> None:
        """Wait up to `timeout_s` for messages, then hand each waiting one to `handle(agent, message)`."""
        if not await self.sock.poll(int(timeout_s * 1000)):
            return
        for _ in range(_DRAIN):  # drain what has arrived, bounded
            frames = await self.sock.recv_multipart()
            try:
                name, msg = _split(frames)
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


def _split(frames: list[bytes]) -> tuple[str, WorkerMessage]:
    # A worker's DEALER sends one frame; the ROUTER puts the sender's identity (its agent name) first.
    if len(frames) != 2:
        raise CodecError(f"a control message is [identity, body], not {len(frames)} frame(s)")
    name, msg = frames[0].decode(errors="replace"), decode_from_worker(frames[1])
    if msg.agent != name:
        raise CodecError(f"a message naming agent '{msg.agent}' came from '{name}'")
    return name, msg
