"""Pace a replayed or simulated stream on the run clock: recorded time × 1/speed, or as fast as possible."""

from __future__ import annotations

from runtime.clock import Clock

__all__ = ["Pacer"]


class Pacer:
    """Map stream time (µs from the stream's start) onto the run clock (ns).

    At `speed` > 0, stream time τ is due at t_run0 + τ/speed; `wait(τ)` sleeps until then and
    returns that time, which sources use as `t_sense` (the recorded time mapped onto the run clock).
    At speed 0 nothing sleeps and `wait` returns the clock's current time: lossless, as fast as
    downstream backpressure allows.
    """

    def __init__(self, clock: Clock, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be ≥ 0 (0 = as fast as possible), got {speed}")
        self.clock, self.speed = clock, float(speed)
        self.t_run0_ns: int | None = None

    def start(self) -> None:
        """Anchor stream time 0 at the clock's current time."""
        self.t_run0_ns = self.clock.now_ns()

    def due_ns(self, stream_us: float) -> int:
        """Run-clock time (ns) at which stream time `stream_us` is due."""
        if self.t_run0_ns is None:
            self.start()
        assert self.t_run0_ns is not None
        if self.speed == 0:
            return self.clock.now_ns()
        return self.t_run0_ns + int(stream_us * 1000.0 / self.speed)

    async def wait(self, stream_us: float) -> int:
        """Sleep until `stream_us` is due (never at speed 0); return its run-clock time in ns."""
        due = self.due_ns(stream_us)
        if self.speed > 0:
            await self.clock.sleep_until_ns(due, precise=True)
        return due
