"""The simulated clock: time advances only when every task is idle, so interleavings repeat exactly."""

from __future__ import annotations

import asyncio

from runtime.clock import SimClock


async def _trace(seed_delays: list[list[float]]) -> list[tuple[int, int]]:
    clock = SimClock()
    events: list[tuple[int, int]] = []

    async def worker(i: int, delays: list[float]) -> None:
        for d in delays:
            await clock.sleep(d)
            for _ in range(3):  # some work that yields several times between sleeps
                await asyncio.sleep(0)
            events.append((clock.now_ns(), i))

    await asyncio.gather(*(worker(i, d) for i, d in enumerate(seed_delays)))
    return events


async def test_sim_clock_is_deterministic_and_ordered() -> None:
    delays = [[0.010, 0.020, 0.005], [0.015, 0.001, 0.030], [0.007, 0.007, 0.007]]
    a = await _trace(delays)
    b = await _trace(delays)
    assert a == b
    times = [t for t, _ in a]
    assert times == sorted(times)
    assert times[-1] == 46_000_000  # 15 + 1 + 30 ms: the longest chain, in simulated time
