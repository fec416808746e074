"""Per-input queues with the three QoS policies, and exact drop accounting per edge."""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .graph import InputSpec
from .message import Message

__all__ = ["InputQueue", "EdgeStats", "LatencyReservoir", "MAX_SEQ_JUMP"]

#: The largest sequence gap believed: 16 Mi messages lost between two that arrive (at 1 MHz, 16 s of
#: continuous loss). A larger jump is a malformed message, not drops.
MAX_SEQ_JUMP = 1 << 24


class LatencyReservoir:
    """The most recent latency samples (ns) in a fixed ring, so memory stays flat however long a run lasts."""

    #: Histogram bucket upper bounds (ns) for Prometheus; counts are exact over the whole run.
    BOUNDS_NS = [
        *(50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000),
        *(20_000_000, 50_000_000, 100_000_000, 200_000_000, 500_000_000, 1_000_000_000),
    ]

    def __init__(self, size: int = 4096) -> None:
        self._buf = np.zeros(size, dtype=np.int64)
        self._n = 0
        self.max_ns = 0
        self.sum_ns = 0
        self.buckets = [0] * (len(self.BOUNDS_NS) + 1)
        self._cached_at = 0
        self._cached = (float("nan"), float("nan"), float("nan"))

    def add(self, ns: int) -> None:
        self._buf[self._n % self._buf.size] = ns
        self._n += 1
        self.sum_ns += ns
        self.buckets[bisect_left(self.BOUNDS_NS, ns)] += 1
        if ns > self.max_ns:
            self.max_ns = ns

    @property
    def count(self) -> int:
        return self._n

    def samples(self) -> np.ndarray:
        return self._buf[: min(self._n, self._buf.size)]

    def percentiles_us(self) -> tuple[float, float, float]:
        """p50, p99 and max (µs) of the recent samples, as `np.percentile` (linear) gives them.

        One `np.partition` instead of a sort, and nothing recomputed while no sample was added: a
        worker summarises every edge twice a second on the loop that also carries its messages."""
        if self._cached_at != self._n:
            s = self.samples()
            if not s.size:
                return (float("nan"), float("nan"), float("nan"))
            pos = [(s.size - 1) * q for q in (0.5, 0.99)]
            idx = sorted({int(p) for p in pos} | {min(int(p) + 1, s.size - 1) for p in pos} | {s.size - 1})
            part = np.partition(s, idx)
            out = []
            for p in pos:
                lo, frac = int(p), p - int(p)
                hi = min(lo + 1, s.size - 1)
                out.append(float(part[lo]) + (float(part[hi]) - float(part[lo])) * frac)
            self._cached = (out[0] / 1000.0, out[1] / 1000.0, float(part[-1]) / 1000.0)
            self._cached_at = self._n
        return self._cached


@dataclass
class EdgeStats:
    """Counts for one edge at its receiving end. `dropped_gap` comes from sequence numbers (lost on
    the way); `dropped_queue` from the QoS policy; `received` = delivered to the node."""

    name: str
    received: int = 0
    dropped_queue: int = 0
    dropped_gap: int = 0
    dropped_failed: int = 0
    bytes: int = 0
    queue_depth: int = 0
    latency: LatencyReservoir = field(default_factory=LatencyReservoir)
    sense_latency: LatencyReservoir = field(default_factory=LatencyReservoir)
    closed: bool = False
    _expected: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_gap + self.dropped_failed

    def observe_seq(self, topic: str, incarnation: int, seq: int) -> bool:
        """Count a gap exactly: messages skipped between the expected and the received sequence number.

        A restarted producer (new incarnation) starts again at sequence 0. A jump of more than
        `MAX_SEQ_JUMP` is implausible (a forged or corrupt message, not a billion losses): False, and
        nothing is counted or remembered, so the caller drops it as malformed."""
        inc, expected = self._expected.get(topic, (incarnation, 0))
        if inc != incarnation:
            expected = 0
        if seq - expected > MAX_SEQ_JUMP:
            return False
        if seq > expected:
            self.dropped_gap += seq - expected
        self._expected[topic] = (incarnation, max(expected, seq + 1))
        return True


class InputQueue:
    """A bounded queue for one input.

    - `latest`: a single slot; each overwrite counts one drop (`queue` is ignored).
    - `drop_oldest`: a ring of `queue` messages; a full ring drops its oldest (counted).
    - `backpressure`: `put` waits for room, so producers slow down; nothing is dropped.
    """

    def __init__(self, spec: InputSpec, stats: EdgeStats) -> None:
        self.spec = spec
        self.policy = spec.policy
        self.depth = 1 if spec.policy == "latest" else spec.queue
        self.stats = stats
        self._items: deque[tuple[int, Message]] = deque()
        self._space = asyncio.Event()
        self._space.set()
        self.eos = False

    def __len__(self) -> int:
        return len(self._items)

    def head_order(self) -> int | None:
        return self._items[0][0] if self._items else None

    def put_nowait(self, order: int, msg: Message) -> None:
        """Lossy put (latest / drop_oldest, or in-process delivery after `wait_space`)."""
        if len(self._items) >= self.depth:
            if self.policy == "backpressure":
                raise RuntimeError("backpressure queue overfilled: call wait_space() first")
            self._items.popleft()
            self.stats.dropped_queue += 1
        self._items.append((order, msg))
        self.stats.queue_depth = len(self._items)
        if len(self._items) >= self.depth:
            self._space.clear()

    def full(self) -> bool:
        return len(self._items) >= self.depth

    async def wait_space(self) -> None:
        while len(self._items) >= self.depth:
            self._space.clear()
            await self._space.wait()

    def pop(self) -> Message:
        _, msg = self._items.popleft()
        self.stats.queue_depth = len(self._items)
        if len(self._items) < self.depth:
            self._space.set()
        return msg

    def discard_all(self) -> int:
        """Empty the queue (its node failed); returns how many messages were discarded."""
        n = len(self._items)
        self._items.clear()
        self.stats.queue_depth = 0
        self._space.set()
        return n
