"""Clocks a node reads time from: the wall clock, or a simulated clock for replay and deterministic tests."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

__all__ = ["Clock", "WallClock", "SimClock"]


class Clock(Protocol):
    """What `ctx.clock` offers. Times are integer nanoseconds."""

    def now_ns(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until_ns(self, t_ns: int, *, precise: bool = False) -> None: ...


class WallClock:
    """Real time: `time.time_ns()` for stamps (comparable across processes on one host).

    `sleep_until_ns` sleeps on the loop's timer until a margin before the target (1.5 ms), then
    yields until it passes. The timer can wake late (1 ms ticks; a virtual CPU waking from idle):
    with `precise=True` (replay pacing) the margin follows the lateness seen in the last 64 such
    sleeps, up to 4 ms, spending more CPU on yielding in exchange for on-time pacing. Not the default:
    on a busy host every sleeper spinning longer makes the timers later still."""

    def __init__(self) -> None:
        self._late_ns: deque[int] = deque(maxlen=64)

    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def _margin_ns(self) -> int:
        return min(_MAX_MARGIN_NS, max(_MIN_MARGIN_NS, max(self._late_ns, default=0) + 300_000))

    async def sleep_until_ns(self, t_ns: int, *, precise: bool = False) -> None:
        margin = self._margin_ns() if precise else _COARSE_MARGIN_NS
        while True:
            remaining = t_ns - time.time_ns()
            if remaining <= 0:
                return
            if remaining > margin + 500_000:
                wake = t_ns - margin
                await asyncio.sleep((wake - time.time_ns()) / 1e9)
                if precise:
                    self._late_ns.append(max(0, time.time_ns() - wake))
                    margin = self._margin_ns()
            else:
                await asyncio.sleep(0)


_COARSE_MARGIN_NS = 200_000  # a timer sleep, then yields for the last 0.2 ms (and any early wake)
_MIN_MARGIN_NS = 1_500_000
_MAX_MARGIN_NS = 4_000_000


class SimClock:
    """Simulated time that advances only when every sleeper asks it to: deterministic runs.

    Each `sleep` jumps the clock to the earliest pending wake-up once all other tasks have yielded,
    so a loop of sleeping nodes runs as fast as the CPU allows and repeats exactly.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = 0
        self._scheduled = False

    def now_ns(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until_ns(self._now + int(seconds * 1e9))

    async def sleep_until_ns(self, t_ns: int, *, precise: bool = False) -> None:
        if t_ns <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._counter += 1
        self._waiters.append((t_ns, self._counter, fut))
        self._waiters.sort(key=lambda w: (w[0], w[1]))
        asyncio.get_running_loop().call_soon(self._maybe_advance)
        await fut

    def _maybe_advance(self) -> None:
        if not self._scheduled:  # one pending advance at a time, or two would keep each other "busy"
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._advance_when_idle, 0)

    def _advance_when_idle(self, hops: int) -> None:
        # Time moves only once nothing else is ready to run, so results do not depend on scheduling.
        # asyncio has no public "idle" hook: peek at the ready queue where it exists, else allow
        # a bounded number of loop turns.
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        if hops < 10_000 and (len(ready) > 0 if ready is not None else hops < 50):
            loop.call_soon(self._advance_when_idle, hops + 1)
            return
        self._scheduled = False
        self._advance()
        if self._waiters:
            self._maybe_advance()

    def _advance(self) -> None:
        self._waiters = [w for w in self._waiters if not w[2].done()]
        if not self._waiters:
            return
        t_ns = self._waiters[0][0]
        self._now = max(self._now, t_ns)
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, fut = self._waiters.pop(0)
            if not fut.done():
                fut.set_result(None)
