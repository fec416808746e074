"""Commands received: their kinds, one run per (sender, id) with the reply cached, handlers one at a time.

Commands are QoS 1, so they may arrive twice: each carries an id, the receiver runs a handler once
per (sender, id) and answers a duplicate with the cached reply (bounded LRU of `seen_ids`).
Commands are never retained and sessions are clean, so a reconnecting agent never replays them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import CodecError
from . import protocol as p
from .events import FleetStats

__all__ = ["DEPLOY", "STOP", "PING", "CommandHandler", "CommandDesk"]

log = logging.getLogger("edgeloop.fleet")

DEPLOY = "deploy"  #: body {"graph_yaml": str, "agent": str, "plan"?: dict}: run this agent's part
STOP = "stop"  #: body {}: stop the running part
PING = "ping"  #: body anything: answered by every FleetClient with {"pid", "host", "time"}

CommandHandler = Callable[[p.Command], Awaitable[Any]]
#: Publishes an encoded reply to the agent named first; failures are the sender's to retry.
ReplySender = Callable[[str, bytes], Awaitable[None]]


class CommandDesk:
    """Deduplicates incoming commands, queues them (bounded) and answers each from its handler.

    `receive` is called from the message router and never waits; `run` is the one task that calls
    handlers in arrival order and sends replies through `send`. Counters go to `stats`.
    """

    def __init__(self, stats: FleetStats, send: ReplySender, *, queue_size: int, seen_ids: int) -> None:
        self.stats = stats
        self._send = send
        self._handlers: dict[str, CommandHandler] = {PING: _ping}
        self._seen: OrderedDict[tuple[str, str], p.Reply | None] = OrderedDict()
        self._seen_max = max(1, seen_ids)
        self._queue: asyncio.Queue[p.Command] = asyncio.Queue(maxsize=max(1, queue_size))
        self.resends: set[asyncio.Task[None]] = set()

    @property
    def remembered(self) -> int:
        """How many (sender, id) pairs are remembered for deduplication."""
        return len(self._seen)

    def on(self, kind: str, handler: CommandHandler) -> None:
        self._handlers[kind] = handler

    def receive(self, cmd: p.Command) -> None:
        """Queue a new command; answer a duplicate again from the cache (or drop it while it runs)."""
        key = (cmd.sender, cmd.id)
        if key in self._seen:
            self.stats.commands_duplicate += 1
            cached = self._seen[key]
            if cached is not None:  # already answered: answer again, the first reply may be lost
                task = asyncio.create_task(self._reply(cmd.sender, cached))
                self.resends.add(task)
                task.add_done_callback(self.resends.discard)
            return
        if self._queue.full():
            self.stats.commands_dropped += 1  # the sender retries with the same id
            return
        self._seen[key] = None
        while len(self._seen) > self._seen_max:
            self._seen.popitem(last=False)
        self._queue.put_nowait(cmd)

    async def run(self) -> None:
        """Handle queued commands one at a time; a handler's failure becomes an error reply."""
        while True:
            cmd = await self._queue.get()
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
        await self._send(to, payload)


async def _ping(cmd: p.Command) -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
