"""Input queues (latest / drop_oldest / backpressure), exact gap accounting per producer incarnation, latency reservoirs."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from runtime.graph import InputSpec
from runtime.message import Message
from runtime.qos import EdgeStats, InputQueue, LatencyReservoir


def queue(policy: str, depth: int = 3) -> InputQueue:
    spec = InputSpec.model_validate({"from": "cam/frame", "policy": policy, "queue": depth})
    return InputQueue(spec, EdgeStats("cam/frame → net/x"))


def msg(seq: int) -> Message:
    return Message("cam/frame", seq, seq, seq, seq)


async def settle() -> None:
    """Run every callback that is ready (not a wait for time): a blocked task stays blocked through it."""
    for _ in range(5):
        await asyncio.sleep(0)


# ----- InputQueue -----


def test_latest_keeps_one_slot_whatever_the_queue_setting() -> None:
    q = queue("latest", depth=10)
    for s in range(4):
        q.put_nowait(s, msg(s))
    assert (q.depth, len(q), q.stats.dropped_queue, q.stats.queue_depth) == (1, 1, 3, 1)
    assert q.pop().seq == 3
    assert (len(q), q.stats.queue_depth, q.head_order()) == (0, 0, None)


def test_drop_oldest_keeps_the_newest_in_order_and_counts_each_drop() -> None:
    q = queue("drop_oldest", depth=3)
    for s in range(5):
        q.put_nowait(100 + s, msg(s))
    assert (len(q), q.stats.dropped_queue, q.head_order()) == (3, 2, 102)
    assert [q.pop().seq for _ in range(3)] == [2, 3, 4]
    assert q.stats.dropped == 2


def test_a_full_backpressure_queue_refuses_a_put_instead_of_dropping() -> None:
    q = queue("backpressure", depth=2)
    q.put_nowait(0, msg(0))
    q.put_nowait(1, msg(1))
    assert q.full()
    with pytest.raises(RuntimeError, match=r"backpressure queue overfilled: call wait_space\(\) first"):
        q.put_nowait(2, msg(2))
    assert (len(q), q.stats.dropped_queue) == (2, 0)


async def test_backpressure_put_awaits_room_and_loses_nothing() -> None:
    q = queue("backpressure", depth=2)
    sent: list[int] = []

    async def producer() -> None:
        for s in range(6):
            await q.wait_space()
            q.put_nowait(s, msg(s))
            sent.append(s)

    task = asyncio.create_task(producer())
    await settle()
    assert sent == [0, 1] and not task.done()  # waiting for room, not dropping
    got = []
    async with asyncio.timeout(2.0):
        for _ in range(100):  # the consumer: one pop per loop turn, the producer refills
            if len(q):
                got.append(q.pop().seq)
            if len(got) == 6:
                break
            await asyncio.sleep(0)
        await task
    assert got == list(range(6)) and q.stats.dropped == 0


async def test_wait_space_returns_at_once_with_room_and_discard_all_frees_a_waiter() -> None:
    q = queue("backpressure", depth=2)
    await asyncio.wait_for(q.wait_space(), 1.0)  # empty: no wait
    q.put_nowait(0, msg(0))
    q.put_nowait(1, msg(1))
    waiter = asyncio.create_task(q.wait_space())
    await settle()
    assert not waiter.done()
    assert q.discard_all() == 2
    await asyncio.wait_for(waiter, 1.0)
    assert (len(q), q.stats.queue_depth) == (0, 0)


# ----- EdgeStats -----


def test_gaps_are_counted_exactly_and_late_or_repeated_numbers_are_not() -> None:
    st = EdgeStats("e")
    for s in (0, 1, 4, 2, 4, 5, 9):
        st.observe_seq("cam/frame", 0, s)
    assert st.dropped_gap == 2 + 3  # 2, 3 then 6, 7, 8; the late 2 and the repeated 4 change nothing


def test_each_producer_topic_has_its_own_sequence() -> None:
    st = EdgeStats("e")
    for topic, s in (("a/x", 0), ("b/x", 0), ("a/x", 1), ("b/x", 3), ("a/x", 2)):
        st.observe_seq(topic, 0, s)
    assert st.dropped_gap == 2


def test_a_restarted_producer_starts_again_at_zero_without_a_gap() -> None:
    st = EdgeStats("e")
    for s in range(5):
        st.observe_seq("cam/frame", 0, s)
    st.observe_seq("cam/frame", 1, 0)  # incarnation 1 starts over
    st.observe_seq("cam/frame", 1, 1)
    assert st.dropped_gap == 0
    st.observe_seq("cam/frame", 2, 3)  # incarnation 2 lost its first three
    assert st.dropped_gap == 3


def test_an_eos_carrying_the_count_sent_reveals_a_trailing_gap() -> None:
    st = EdgeStats("e")
    for s in range(3):
        st.observe_seq("cam/frame", 0, s)
    st.observe_seq("cam/frame", 0, 5)  # EOS: 5 were sent, 3 arrived
    assert st.dropped_gap == 2
    clean = EdgeStats("e")
    for s in range(3):
        clean.observe_seq("cam/frame", 0, s)
    clean.observe_seq("cam/frame", 0, 3)
    assert clean.dropped_gap == 0


def test_dropped_is_the_sum_of_its_causes() -> None:
    st = EdgeStats("e", dropped_queue=1, dropped_gap=2, dropped_failed=4)
    assert st.dropped == 7


# ----- LatencyReservoir -----


def expected_us(samples: np.ndarray) -> tuple[float, float, float]:
    p50, p99 = np.percentile(samples, [50, 99])
    return (p50 / 1000.0, p99 / 1000.0, float(samples.max()) / 1000.0)


def test_an_empty_reservoir_has_no_percentiles() -> None:
    assert all(math.isnan(v) for v in LatencyReservoir().percentiles_us())


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 101, 4096])
def test_percentiles_match_numpy_linear_interpolation(n: int) -> None:
    data = np.random.default_rng(n).integers(1_000, 5_000_000, size=n)
    r = LatencyReservoir(size=4096)
    for v in data:
        r.add(int(v))
    assert r.percentiles_us() == pytest.approx(expected_us(data), rel=1e-12)
    assert (r.count, r.sum_ns, r.max_ns) == (n, int(data.sum()), int(data.max()))


def test_percentiles_cover_only_the_ring_while_count_sum_and_max_cover_the_run() -> None:
    r = LatencyReservoir(size=100)
    r.add(10_000_000)  # an early spike, pushed out of the ring below
    later = np.arange(1, 250) * 1000
    for v in later:
        r.add(int(v))
    assert r.samples().size == 100
    assert sorted(r.samples().tolist()) == later[-100:].tolist()
    assert r.percentiles_us() == pytest.approx(expected_us(later[-100:]), rel=1e-12)
    assert (r.count, r.max_ns, r.sum_ns) == (250, 10_000_000, 10_000_000 + int(later.sum()))


def test_a_new_sample_refreshes_the_cached_percentiles() -> None:
    r = LatencyReservoir()
    for v in (1000, 2000, 3000):
        r.add(v)
    assert r.percentiles_us()[2] == 3.0
    r.add(9000)
    assert r.percentiles_us() == pytest.approx(expected_us(np.array([1000, 2000, 3000, 9000])))


def test_histogram_buckets_are_exact_with_upper_bounds_included() -> None:
    r = LatencyReservoir()
    bounds = LatencyReservoir.BOUNDS_NS
    values = [0, bounds[0], bounds[0] + 1, bounds[3], bounds[-1], bounds[-1] + 1, 10**12]
    for v in values:
        r.add(v)
    want = [0] * (len(bounds) + 1)
    want[0] = 2  # 0 and exactly the first bound (Prometheus `le`)
    want[1] = 1
    want[3] = 1
    want[len(bounds) - 1] = 1
    want[len(bounds)] = 2  # above every bound
    assert r.buckets == want and sum(r.buckets) == r.count == len(values)
