"""Routing inside a worker: each output to its inputs (in-process by reference, PUSH to other agents),
end of stream, the tap for tools, and inbound frames to the inputs they feed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from .clock import Clock, WallClock
from .codec import DEFAULT_LIMITS, EOS, CodecLimits, decode, encode, readonly, to_wire_payload
from .errors import CodecError, GraphError
from .graph import Graph
from .inbox import InboxReader
from .message import Message, Payload
from .runner import NodeRunner
from .sockets import shadow
from .wiring import Wiring

__all__ = ["Route", "Router", "MAX_TAP_SUBSCRIPTIONS", "MAX_FUTURE_NS"]

log = logging.getLogger("edgeloop.worker")
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_YIELD_EVERY = 8  # emits between forced loop turns (fairness between a busy source and its neighbours)
_EOS_TIMEOUT_S = 5.0
_TAP_YIELD_EVERY = 64  # subscriptions read between loop turns (a flood must not hold the data path)
#: Subscriptions applied at once on one agent's tap (`$EDGELOOP_MAX_TAP_SUBSCRIPTIONS`): one per tool
#: and topic; more are ignored and counted (`tap_ignored`).
MAX_TAP_SUBSCRIPTIONS = 1024
#: A message stamped (t_emit) further ahead of this host's wall clock is malformed, not a latency.
MAX_FUTURE_NS = 60 * 1_000_000_000

#: Local inputs a topic feeds: (runner, input port).
Targets = list[tuple[NodeRunner, str]]


@dataclass(eq=False)
class Route:
    """Where one output goes, and what it sent."""

    topic: str
    local: Targets = field(default_factory=list)
    lossy: list[zmq.Socket[Any]] = field(default_factory=list)  # sync shadows of PUSH sockets
    bp: list[tuple[zmq.asyncio.Socket, zmq.Socket[Any]]] = field(default_factory=list)
    seq: int = 0
    sent: int = 0
    send_drops: int = 0
    bytes: int = 0
    #: lossy destination index -> the newest message its full pipe refused, sent as soon as there is room
    #: (a newer one replaces it), so on a lossy edge the newest message survives, as `latest` promises.
    held: dict[int, list[Any]] = field(default_factory=dict)


class Router:
    """Every route of agent `agent`'s nodes (`runners`), and the inbound side of its inboxes.

    `connect(push, wiring)` builds the routes once the launcher has said where everyone listens;
    `emit` sends, `finish` sends end of stream; `lossy_reader` / `bp_reader` deliver what arrives.
    """

    def __init__(
        self,
        graph: Graph,
        agent: str,
        runners: Mapping[str, NodeRunner],
        clock: Clock,
        *,
        incarnation: int,
        stop_event: asyncio.Event,
        max_message_bytes: int = DEFAULT_LIMITS.max_message_bytes,
        max_tap_subscriptions: int = MAX_TAP_SUBSCRIPTIONS,
    ) -> None:
        self.graph = graph
        self.agent = agent
        self.runners = runners
        self.clock = clock
        self.incarnation = incarnation
        self.stop_event = stop_event
        self.routes: dict[tuple[str, str], Route] = {}
        self.tapped: dict[str, int] = {}  # topic -> subscriber count on the tap
        self.malformed = 0
        self.unroutable = 0
        self.tap_ignored = 0  # tap subscriptions over the cap, ignored
        self.max_tap_subscriptions = max_tap_subscriptions
        self.limits = CodecLimits(max_message_bytes=max_message_bytes)
        self._remote_in: dict[str, Targets] = {}  # topic -> local inputs fed from other agents (lossy inbox)
        self._wall = isinstance(clock, WallClock)
        self._tap: zmq.Socket[Any] | None = None
        self._emits_since_yield = 0
        self._tasks: set[asyncio.Task[None]] = set()  # reader resumptions and held-message flushes in flight
        self._flushing: set[tuple[str, int]] = set()  # (topic, lossy destination) with a flush task

    # ----- building -----
    def connect(self, push: Callable[[str], zmq.asyncio.Socket], wiring: Wiring) -> None:
        """Build every output's route: local inputs by reference, other agents over `push(endpoint)`."""
        for node_id in self.runners:
            for port in self.graph.outputs[node_id]:
                self.routes[(node_id, port)] = Route(f"{node_id}/{port}")
        lossy_agents: dict[tuple[str, str], set[str]] = {}
        for e in self.graph.edges:
            if e.is_timer:
                continue
            src_node, port = e.source.split("/")
            src_agent, dst_agent = self.graph.agent_of(src_node), self.graph.agent_of(e.target_node)
            if src_agent == self.agent:
                route = self.routes[(src_node, port)]
                if dst_agent == self.agent:
                    route.local.append((self.runners[e.target_node], e.target_input))
                elif e.spec.policy == "backpressure":
                    s = push(wiring.bp_inbox[f"{e.target_node}/{e.target_input}"])
                    route.bp.append((s, shadow(s)))
                else:
                    lossy_agents.setdefault((src_node, port), set()).add(dst_agent)
            if dst_agent == self.agent and src_agent != self.agent and e.spec.policy != "backpressure":
                self._remote_in.setdefault(e.source, []).append((self.runners[e.target_node], e.target_input))
        for (src_node, port), agents in lossy_agents.items():
            for a in sorted(agents):
                self.routes[(src_node, port)].lossy.append(shadow(push(wiring.inbox[a])))

    def set_tap(self, tap: zmq.asyncio.Socket) -> None:
        """Copy subscribed topics to `tap` (an XPUB) from now on; `watch_tap` follows the subscriptions."""
        self._tap = shadow(tap)

    # ----- sending -----
    async def emit(
        self, node_id: str, port: str, payload: Payload, t_sense: int | None, origin: str = ""
    ) -> None:
        route = self.routes.get((node_id, port))
        if route is None:
            if port in self.graph.classes[node_id].outputs:
                return  # declared by the class, left out of the graph's `outputs:`: routed nowhere
            raise GraphError(
                f"node '{node_id}' emitted on output '{port}', which is not declared "
                f"(outputs: {', '.join(self.graph.outputs[node_id]) or 'none'})"
            )
        now = time.time_ns() if self._wall else self.clock.now_ns()
        payload = to_wire_payload(payload)
        msg = Message(
            route.topic, route.seq, now if t_sense is None else t_sense, now, payload, origin or route.topic
        )
        route.seq += 1
        route.sent += 1
        if route.local:
            ro = Message(msg.topic, msg.seq, msg.t_sense_ns, msg.t_emit_ns, readonly(payload), msg.origin)
            for runner, inp in route.local:
                await runner.deliver(inp, ro, blocking=True)
        tapped = route.topic in self.tapped
        if route.lossy or route.bp or tapped:
            frames = encode(msg, incarnation=self.incarnation, wire_ready=True)
            if tapped and self._tap is not None:
                try:
                    _send_nowait(self._tap, frames)
                except zmq.Again:
                    pass  # a slow tool never slows the graph
            for f in frames:
                route.bytes += len(f) if type(f) is bytes else memoryview(f).nbytes
            for i, sync in enumerate(route.lossy):
                self._send_lossy(route, i, sync, frames)
            for asock, sync in route.bp:
                try:
                    _send_nowait(sync, frames)
                except zmq.Again:
                    await self._send_blocking(asock, frames)
        # Emitting never waits on lossy paths, so a source running flat out would starve the other
        # nodes of its process: give the loop a turn every few messages.
        self._emits_since_yield += 1
        if self._emits_since_yield >= _YIELD_EVERY:
            self._emits_since_yield = 0
            await asyncio.sleep(0)

    def _send_lossy(self, route: Route, i: int, sync: zmq.Socket[Any], frames: list[Any]) -> None:
        """Send without waiting; a full pipe drops the *older* message (the one held back), never the newest.

        A drop is a send drop here and a sequence gap at the receiver (counted once, by each side)."""
        if route.held:
            older = route.held.pop(i, None)
            if older is not None:
                try:
                    _send_nowait(sync, older)
                except zmq.Again:
                    route.send_drops += 1  # superseded by `frames` while the pipe stayed full
        try:
            _send_nowait(sync, frames)
        except zmq.Again:
            route.held[i] = frames
            if (route.topic, i) not in self._flushing:
                self._flushing.add((route.topic, i))
                task = asyncio.get_running_loop().create_task(self._flush_held(route, i, sync))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _flush_held(self, route: Route, i: int, sync: zmq.Socket[Any]) -> None:
        """Send the held message once the pipe has room (a producer that went quiet still delivers its last)."""
        sock = zmq.asyncio.Socket.shadow(sync.underlying)
        try:
            while i in route.held and not self.stop_event.is_set():
                if await sock.poll(50, zmq.POLLOUT):  # type: ignore[call-arg]
                    frames = route.held.pop(i, None)
                    if frames is None:
                        break
                    try:
                        _send_nowait(sync, frames)
                    except zmq.Again:
                        route.held.setdefault(i, frames)  # room went to another route: try again
        finally:
            self._flushing.discard((route.topic, i))

    async def _send_blocking(self, sock: zmq.asyncio.Socket, frames: list[Any]) -> None:
        while not self.stop_event.is_set():
            if await sock.poll(200, zmq.POLLOUT):  # type: ignore[call-arg]
                await sock.send_multipart(frames, copy=False)
                return

    async def finish(self, node_id: str) -> None:
        """End of stream on every output of `node_id`: local inputs close, other agents get an EOS
        carrying the number of messages sent (so a trailing gap is counted too)."""
        for port in self.graph.outputs[node_id]:
            route = self.routes[(node_id, port)]
            eos = Message(route.topic, route.seq, 0, time.time_ns(), None)
            for runner, inp in route.local:
                runner.close_input(inp)
            if route.lossy or route.bp:
                frames = encode(eos, kind=EOS, incarnation=self.incarnation)
                for i, sync in enumerate(route.lossy):
                    sock = zmq.asyncio.Socket.shadow(sync.underlying)
                    held = route.held.pop(i, None)  # the newest message goes before the end of stream
                    if held is not None:
                        await asyncio.wait_for(self._send_blocking(sock, held), timeout=_EOS_TIMEOUT_S)
                    await asyncio.wait_for(self._send_blocking(sock, frames), timeout=_EOS_TIMEOUT_S)
                for asock, _ in route.bp:
                    await asyncio.wait_for(self._send_blocking(asock, frames), timeout=_EOS_TIMEOUT_S)

    def outputs(self) -> dict[str, dict[str, int]]:
        """Per output topic: messages sent, send drops and bytes (for the worker's snapshot)."""
        return {
            r.topic: {"sent": r.sent, "send_drops": r.send_drops, "bytes": r.bytes}
            for r in self.routes.values()
        }

    # ----- receiving -----
    def _handle_frames(
        self, frames: list[Any], targets_for: Callable[[str], Targets | None]
    ) -> list[tuple[NodeRunner, str, Message]]:
        try:
            kind, msg, inc = decode(frames, self.limits)
            if self._wall and msg.t_emit_ns > time.time_ns() + MAX_FUTURE_NS:
                raise CodecError(
                    f"'{msg.topic}' seq {msg.seq} was sent {msg.t_emit_ns} ns, far in the future"
                )
        except CodecError as exc:
            self._malformed(exc)
            return []
        targets = targets_for(msg.topic)
        if not targets:
            self.unroutable += 1
            return []
        out = []
        for runner, port in targets:
            st = runner.stats[port]
            # An EOS carries the number of messages sent, so a trailing gap is counted exactly too.
            if not st.observe_seq(msg.topic, inc, msg.seq):
                self._malformed(CodecError(f"'{msg.topic}' seq {msg.seq}: an implausible jump"))
                return []
            if kind == EOS:
                runner.close_input(port)
            else:
                out.append((runner, port, msg))
        return out

    def _malformed(self, exc: CodecError) -> None:
        self.malformed += 1
        if self.malformed <= 10 or self.malformed % 1000 == 0:
            log.warning("dropped malformed message #%d: %s", self.malformed, exc)

    def lossy_reader(self, sock: zmq.asyncio.Socket) -> InboxReader:
        """The agent's lossy inbox: each message goes to every local input it feeds, dropped per policy."""
        targets_for = self._remote_in.get

        def handle(frames: list[Any]) -> bool:
            for runner, port, msg in self._handle_frames(frames, targets_for):
                runner.deliver_nowait(port, msg)
            return True

        return InboxReader(shadow(sock), handle, f"agent '{self.agent}' inbox")

    def bp_reader(self, sock: zmq.asyncio.Socket, runner: NodeRunner, port: str) -> InboxReader:
        """One backpressure input fed from another agent: reading pauses while its queue is full, so
        unread messages stay in ZeroMQ and the sender's PUSH blocks at its high-water mark."""
        q = runner.queues[port]
        targets = [(runner, port)]

        def targets_for(_topic: str) -> Targets:
            return targets

        def handle(frames: list[Any]) -> bool:
            for r, p, msg in self._handle_frames(frames, targets_for):
                r.deliver_nowait(p, msg)
            if q.full():
                task = asyncio.ensure_future(resume_when_space())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return False
            return True

        async def resume_when_space() -> None:
            await q.wait_space()
            reader.resume()

        reader = InboxReader(shadow(sock), handle, f"inbox of {runner.node_id}/{port}")
        return reader

    async def watch_tap(self, tap: zmq.asyncio.Socket) -> None:
        """Apply tools' subscriptions to the tap (frames: 1 = subscribe, 0 = unsubscribe, then the topic).

        The tap is an XPUB in manual mode: a subscription takes effect only when applied here, right
        after it is read (ZeroMQ applies it to the connection it came from). Only a topic this agent
        publishes is applied (the tap copies whole topics; anything else could match nothing, and each
        byte of a subscription costs ZeroMQ's filter a node), and at most `max_tap_subscriptions` at
        once; every other subscription is ignored and counted (`tap_ignored`), and reading them gives
        the loop a turn every few, so a flood costs no time on the data path. (ZeroMQ itself keeps every
        subscription it has read until its sender leaves: the tap's ZMQ_MAXMSGSIZE bounds each.)"""
        sync, n_read = shadow(tap), 0
        topics = {r.topic for r in self.routes.values()}
        while True:
            try:
                frame = await tap.recv()
            except zmq.Again:
                continue  # pyzmq's asyncio receive can raise it after a wake-up: try again
            n_read += 1
            if n_read % _TAP_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a ready receive does not suspend: give the loop a turn
            if not frame or frame[0] > 1:
                continue
            prefix = bytes(frame[1:])
            topic = prefix.decode(errors="replace")
            if frame[0] == 1:
                if topic not in topics or sum(self.tapped.values()) >= self.max_tap_subscriptions:
                    self.tap_ignored += 1
                    if self.tap_ignored == 1 or self.tap_ignored % 10_000 == 0:
                        log.warning(
                            "tap: %d subscriptions ignored (not a topic of this agent, or over %d)",
                            self.tap_ignored,
                            self.max_tap_subscriptions,
                        )
                    continue
                sync.setsockopt(zmq.SUBSCRIBE, prefix)
                self.tapped[topic] = self.tapped.get(topic, 0) + 1
            elif topic in self.tapped:  # (a tool that leaves unsubscribes all it asked for, applied or not)
                sync.setsockopt(zmq.UNSUBSCRIBE, prefix)
                if self.tapped[topic] > 1:
                    self.tapped[topic] -= 1
                else:
                    del self.tapped[topic]

    async def close(self) -> None:
        """Cancel reader resumptions still waiting for room."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _send_nowait(sock: zmq.Socket[Any], frames: list[Any]) -> None:
    """`send_multipart(frames, NOBLOCK)` without pyzmq's per-call checks and flag enums (the hot path).

    ZeroMQ checks the high-water mark on a message's first frame only, so `zmq.Again` can come from
    the first `send` alone and a message is never sent in part."""
    last = len(frames) - 1
    for i, f in enumerate(frames):
        sock.send(f, _NOBLOCK_MORE if i < last else _NOBLOCK, copy=False)
