"""CommandDesk without a broker: once per (sender, id), cached replies, bounded queue and memory, error replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.fleet import protocol as p
from runtime.fleet.commands import PING, CommandDesk
from runtime.fleet.events import FleetStats


@dataclass
class Outbox:
    """The replies the desk sent, decoded, with an event per arrival."""

    replies: list[tuple[str, p.Reply]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, to: str, payload: bytes) -> None:
        self.replies.append((to, p.decode_reply(payload, "me")))
        self.arrived.set()

    async def wait(self, n: int, timeout_s: float = 2.0) -> list[tuple[str, p.Reply]]:
        async def until() -> None:
            while len(self.replies) < n:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), timeout_s)
        return self.replies


def cmd(cid: str, kind: str = "echo", body: Any = None, sender: str = "ops") -> p.Command:
    return p.Command(cid, kind, body, 0.0, sender)


@pytest.fixture
async def desk() -> AsyncIterator[tuple[CommandDesk, Outbox]]:
    out = Outbox()
    d = CommandDesk(FleetStats(), out.send, queue_size=4, seen_ids=8)
    runner = asyncio.create_task(d.run())
    yield d, out
    runner.cancel()
    await asyncio.gather(runner, *d.resends, return_exceptions=True)


async def test_a_duplicate_runs_once_and_gets_the_cached_reply(desk: tuple[CommandDesk, Outbox]) -> None:
    d, out = desk
    calls: list[Any] = []

    async def echo(c: p.Command) -> Any:
        calls.append(c.body)
        return {"n": len(calls)}

    d.on("echo", echo)
    d.receive(cmd("a", body=1))
    d.receive(cmd("a", body=1))  # still queued: remembered, not answered yet, so only counted
    ((to, first),) = await out.wait(1)
    assert (to, first.id, first.ok, first.body) == ("ops", "a", True, {"n": 1})
    d.receive(cmd("a", body=1))  # answered: the cached reply goes out again, the handler does not run
    second = (await out.wait(2))[1][1]
    assert second.body == {"n": 1} and second.time == first.time
    assert calls == [1]
    assert (d.stats.commands_handled, d.stats.commands_duplicate) == (1, 2)


async def test_the_same_id_from_another_sender_is_another_command(desk: tuple[CommandDesk, Outbox]) -> None:
    d, out = desk

    async def echo(c: p.Command) -> Any:
        return c.sender

    d.on("echo", echo)
    d.receive(cmd("a", sender="ops"))
    d.receive(cmd("a", sender="launcher"))
    replies = await out.wait(2)
    assert [(to, r.body) for to, r in replies] == [("ops", "ops"), ("launcher", "launcher")]
    assert d.stats.commands_duplicate == 0


async def test_unknown_kinds_and_failing_handlers_become_error_replies(
    desk: tuple[CommandDesk, Outbox],
) -> None:
    d, out = desk

    async def broken(c: p.Command) -> Any:
        raise ValueError("no camera on this host")

    d.on("capture", broken)
    d.receive(cmd("1", kind="launch"))
    d.receive(cmd("2", kind="capture"))
    d.receive(cmd("3", kind=PING))
    (_, unknown), (_, failed), (_, ping) = await out.wait(3)
    assert (
        not unknown.ok and unknown.error == "unknown command kind 'launch' (this agent knows: capture, ping)"
    )
    assert not failed.ok and failed.error == "ValueError: no camera on this host"
    assert ping.ok and set(ping.body) == {"pid", "host", "time"}
    assert d.stats.commands_handled == 3


async def test_an_unencodable_result_is_answered_with_an_error(desk: tuple[CommandDesk, Outbox]) -> None:
    d, out = desk

    async def weird(c: p.Command) -> Any:
        return {1, 2}  # a set is not JSON

    d.on("weird", weird)
    d.receive(cmd("w", kind="weird"))
    ((_, rep),) = await out.wait(1)
    assert (rep.id, rep.ok) == ("w", False)
    assert rep.error.startswith("reply not encodable: Reply is not JSON-encodable")


async def test_a_full_queue_drops_and_forgets_so_a_retry_is_taken() -> None:
    out = Outbox()
    d = CommandDesk(FleetStats(), out.send, queue_size=2, seen_ids=8)  # not running: the queue fills
    for cid in "abc":
        d.receive(cmd(cid))
    assert (d.stats.commands_dropped, d.remembered) == (1, 2)
    runner = asyncio.create_task(d.run())
    try:
        await out.wait(2)
        d.receive(cmd("c"))  # the sender's retry with the same id
        assert [r.id for _, r in await out.wait(3)] == ["a", "b", "c"]
        assert d.stats.commands_duplicate == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_remembered_ids_are_bounded_oldest_first() -> None:
    out = Outbox()
    d = CommandDesk(FleetStats(), out.send, queue_size=16, seen_ids=3)
    runner = asyncio.create_task(d.run())
    try:
        for cid in "abcd":
            d.receive(cmd(cid, kind=PING))
        await out.wait(4)
        assert d.remembered == 3
        d.receive(cmd("d", kind=PING))  # still remembered: answered from the cache
        d.receive(cmd("a", kind=PING))  # forgotten: runs again
        await out.wait(6)
        assert (d.stats.commands_handled, d.stats.commands_duplicate) == (5, 1)
    finally:
        runner.cancel()
        await asyncio.gather(runner, *d.resends, return_exceptions=True)
