"""One worker's sockets: the house options, CURVE across hosts, binding (a taken tcp port is replaced), PUSH
connections confirmed by a monitor, and closing them all."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from .codec import DEFAULT_LIMITS
from .errors import GraphError, TransportError
from .graph import Graph
from .security import CurveServerAuth, configure_curve_client, configure_curve_server
from .wiring import Wiring

__all__ = ["AgentSockets", "HWM", "env_limit", "shadow"]

log = logging.getLogger("edgeloop.worker")

#: High-water marks of every data socket (messages), both directions.
HWM = 1000


def env_limit(name: str, default: int) -> int:
    """A positive integer limit from environment variable `name` (unset: `default`)."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise TransportError(f"{name}={raw!r}: must be a positive whole number (unset it for {default})")
    return int(raw)


class AgentSockets:
    """Makes, binds, connects and closes the sockets of agent `agent`; keys come from `keys_dir`.

    `wiring` is where everything listens; the launcher's `connect` may replace it (endpoints that
    other workers had to move). `rebound` maps each proposed tcp endpoint found taken to the one bound.
    """

    def __init__(
        self, agent: str, graph: Graph, wiring: Wiring, zctx: zmq.asyncio.Context, keys_dir: Path
    ) -> None:
        self.agent = agent
        self.graph = graph
        self.wiring = wiring
        self.zctx = zctx
        self.keys_dir = keys_dir
        self.rebound: dict[str, str] = {}
        self._sockets: list[zmq.asyncio.Socket] = []
        self._auths: list[CurveServerAuth] = []
        self._pushes: dict[str, zmq.asyncio.Socket] = {}
        self._monitors: list[tuple[zmq.asyncio.Socket, zmq.asyncio.Socket]] = []
        #: The largest frame a data socket receives (ZMQ_MAXMSGSIZE, `$EDGELOOP_MAX_MESSAGE_BYTES`,
        #: default the codec's message limit, 256 MiB): a larger one disconnects its sender before it
        #: is read whole. The codec's own limit follows it (`Router`).
        self.max_message_bytes = env_limit("EDGELOOP_MAX_MESSAGE_BYTES", DEFAULT_LIMITS.max_message_bytes)

    def make(self, kind: int) -> zmq.asyncio.Socket:
        """A socket with no linger, the house high-water marks and the receive limit, closed by `close()`."""
        s = self.zctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, HWM)
        s.setsockopt(zmq.RCVHWM, HWM)
        s.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        self._sockets.append(s)
        return s

    def curve_key(self, name: str, *, secret: bool = False) -> Path:
        """The key file `name` in this host's key directory; a missing one is an error that says what to do."""
        path = self.keys_dir / f"{name}.key{'_secret' if secret else ''}"
        if not path.is_file():
            what = "secret key" if secret else "public key"
            fix = (
                f"run `edgeloop keys {name} --dir {self.keys_dir}` on this host"
                if secret
                else f"copy {name}.key (public) from the host that made it"
            )
            raise TransportError(f"agent '{self.agent}': CURVE {what} {path} is missing; {fix}")
        return path

    def is_curve(self, ep: str) -> bool:
        return self.wiring.curve and ep.startswith("tcp://")

    def bind(self, sock: zmq.asyncio.Socket, ep: str) -> None:
        """Bind `ep` (a CURVE server across hosts); a taken tcp port is replaced by a free one and reported."""
        if self.is_curve(ep):
            self._auths.append(
                configure_curve_server(sock, self.curve_key(self.agent, secret=True), self.keys_dir)
            )
        addr = self.wiring.bind.get(ep, ep)
        try:
            sock.bind(addr)
        except zmq.ZMQError as exc:
            if not addr.startswith("tcp://") or exc.errno != zmq.EADDRINUSE:
                raise TransportError(f"agent '{self.agent}' cannot bind {addr}: {exc}") from exc
            sock.bind(addr.rsplit(":", 1)[0] + ":*")
            port = str(sock.getsockopt_string(zmq.LAST_ENDPOINT)).rsplit(":", 1)[1]
            self.rebound[ep] = f"{ep.rsplit(':', 1)[0]}:{port}"
            log.warning("%s was taken on this host: bound %s instead", addr, self.rebound[ep])

    def push(self, ep: str) -> zmq.asyncio.Socket:
        """The one PUSH socket to `ep` (a CURVE client of the agent that binds it, across hosts)."""
        s = self._pushes.get(ep)
        if s is None:
            s = self.make(zmq.PUSH)
            if self.is_curve(ep):
                server = self.wiring.agent_of_endpoint(self.graph, ep)
                if server is None:
                    raise GraphError(f"agent '{self.agent}': no agent binds {ep}")
                configure_curve_client(s, self.curve_key(self.agent, secret=True), self.curve_key(server))
            # Monitor before connecting, so the CONNECTED event cannot be missed.
            self._monitors.append((s, s.get_monitor_socket(zmq.EVENT_CONNECTED)))
            s.connect(ep)
            self._pushes[ep] = s
        return s

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """The ready barrier: every PUSH has a live connection before any source starts."""
        monitors, self._monitors = self._monitors, []
        try:
            deadline = time.monotonic() + timeout_s
            for s, mon in monitors:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise GraphError(
                            f"agent '{self.agent}': a peer did not accept connections within "
                            f"{timeout_s:.0f} s ({s.getsockopt(zmq.LAST_ENDPOINT)!r})"
                        )
                    if await mon.poll(int(remaining * 1000)):
                        evt = await mon.recv_multipart()
                        if int.from_bytes(evt[0][:2], "little") == zmq.EVENT_CONNECTED:
                            break
        finally:
            for s, mon in monitors:
                s.disable_monitor()
                mon.close(linger=0)

    def close(self) -> None:
        for s in self._sockets:
            s.close(linger=0)
        self._sockets.clear()
        self._pushes.clear()
        for auth in self._auths:  # after the CURVE server sockets: a pending handshake would block term()
            auth.close()
        self._auths.clear()


def shadow(sock: zmq.asyncio.Socket) -> zmq.Socket[Any]:
    """A plain (synchronous) socket on the same ZeroMQ socket: the hot path sends without asyncio."""
    return zmq.Socket.shadow(sock.underlying)
