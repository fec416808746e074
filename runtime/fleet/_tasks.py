"""Bounded task cancellation that survives a swallowed cancel (Python 3.11 asyncio.wait_for, gh-86296)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]

log = logging.getLogger("edgeloop.control")


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], timeout_s: float = 1.0
) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait at most `timeout_s` for them; returns those still running.

    On Python 3.11 `asyncio.wait_for` can lose a cancellation that races with the awaited future
    completing, so a loop around such an await (aiomqtt's publish) may keep running after one
    cancel: cancel again every 0.1 s until done or out of time, instead of awaiting forever.
    """
    loop = asyncio.get_running_loop()
    pending = {t for t in tasks if not t.done()}
    done_all = {t for t in tasks if t.done()}
    deadline = loop.time() + timeout_s
    while pending and (left := deadline - loop.time()) > 0:
        for t in pending:
            t.cancel()
        done, pending = await asyncio.wait(pending, timeout=min(left, 0.1))
        done_all |= done
    for t in done_all:
        if not t.cancelled() and t.exception() is not None:
            log.debug("task %s ended with %r while being cancelled", t.get_name(), t.exception())
    if pending:
        log.warning(
            "%d task(s) ignored cancellation for %.1f s: %s",
            len(pending),
            timeout_s,
            ", ".join(t.get_name() for t in pending),
        )
    return pending
