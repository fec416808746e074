"""`edgeloop bench transport` and `edgeloop bench stop`: edgeloop edges against raw pyzmq in the same run."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

from runtime.benchkit import Case
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.message import Message
from runtime.node import Context, Node, Params

from . import rawzmq

__all__ = ["Probe", "ProbeSink", "run", "run_stop"]


class Probe(Node):
    """Emits `count` payloads (64 B of bytes, or a uint8 array of `shape`) at `rate_hz` (0: flat out)."""

    outputs = ("out",)

    class Params(Params):
        count: int = 1000
        rate_hz: float = 200.0
        shape: list[int] = [64]
        array: bool = False

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        payload: Any = np.zeros(p.shape, np.uint8) if p.array else bytes(int(np.prod(p.shape)))
        period = int(1e9 / p.rate_hz) if p.rate_hz else 0
        t0 = ctx.clock.now_ns()
        for i in range(p.count):
            if period:
                await ctx.clock.sleep_until_ns(t0 + i * period)
            await ctx.emit("out", payload)


class ProbeSink(Node):
    """Measures emit→on_input latency (after a warm-up) and throughput; reports them as gauges."""

    inputs = ("in",)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lat: list[int] = []
        self.n = 0
        self.nbytes = 0
        self.t_first = self.t_last = 0.0

    async def on_input(self, port: str, msg: Message) -> None:
        now = time.time_ns()
        if self.n == 0:
            self.t_first = now / 1e9
        self.t_last = now / 1e9
        if self.n >= rawzmq.WARMUP:
            self.lat.append(now - msg.t_emit_ns)
        if isinstance(msg.payload, np.ndarray):
            self.nbytes += msg.payload.nbytes
        self.n += 1

    async def teardown(self) -> None:
        g = self.ctx.gauge
        if self.lat:
            p50, p99 = np.percentile(np.asarray(self.lat) / 1000.0, [50, 99])
            g("p50_us", p50)
            g("p99_us", p99)
        g("n", self.n)
        g("t_first", self.t_first)
        g("t_last", self.t_last)
        g("bytes", self.nbytes)


def _graph_text(
    cross: bool, count: int, rate_hz: float, shape: list[int], array: bool, policy: str, queue: int
) -> str:
    return f"""
name: bench-transport
agents: {{a: {{}}, b: {{}}}}
nodes:
  - id: probe
    uses: bench.transport:Probe
    agent: a
    params: {{count: {count}, rate_hz: {rate_hz}, shape: {shape}, array: {str(array).lower()}}}
  - id: sink
    uses: bench.transport:ProbeSink
    agent: {"b" if cross else "a"}
    inputs: {{in: {{from: probe/out, policy: {policy}, queue: {queue}}}}}
"""


async def _edgeloop(
    cross: bool,
    count: int,
    rate_hz: float,
    shape: list[int],
    array: bool,
    policy: str = "backpressure",
    queue: int = 1000,
    metrics: bool = True,
) -> dict[str, float]:
    g = load_graph("bench.yaml", text=_graph_text(cross, count, rate_hz, shape, array, policy, queue))
    env = {"EDGELOOP_LOG": "WARNING", "EDGELOOP_METRICS": "1" if metrics else "0"}
    result = await Launcher(g, env=env).run(None)
    if result.exit_code:
        raise RuntimeError(f"edgeloop run failed: {result.failures}")
    return dict(result.view["nodes"]["sink"]["counters"])


async def _raw(cross: bool, count: int, rate_hz: float, shape: list[int], array: bool) -> dict[str, float]:
    payload: Any = np.zeros(shape, np.uint8) if array else bytes(int(np.prod(shape)))
    ctx = zmq.asyncio.Context()
    tmp = tempfile.mkdtemp(prefix="edgeloop-raw-")
    endpoint = f"ipc://{tmp}/raw.sock" if cross else "inproc://raw"
    push = rawzmq._socket(ctx, zmq.PUSH)
    try:
        if cross:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.rawzmq", "recv", endpoint, str(count)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
            if line.strip() != "ready":
                raise RuntimeError(f"raw receiver did not start: {line!r}")
            push.connect(endpoint)
            sender = (
                rawzmq.send_latency(push, count, rate_hz, payload)
                if rate_hz
                else rawzmq.send_throughput(push, count, payload)
            )
            await asyncio.wait_for(sender, 300)
            out = await asyncio.wait_for(asyncio.to_thread(proc.stdout.read), 300)
            proc.wait(10)
            import json

            res = json.loads(out)
        else:
            pull = rawzmq._socket(ctx, zmq.PULL)
            pull.bind(endpoint)
            push.connect(endpoint)
            sender = (
                rawzmq.send_latency(push, count, rate_hz, payload)
                if rate_hz
                else rawzmq.send_throughput(push, count, payload)
            )
            res, _ = await asyncio.gather(rawzmq.receive(pull, count), sender)
            pull.close()
    finally:
        push.close()
        ctx.term()
    lat = np.asarray(res["lat_ns"], dtype=np.float64) / 1000.0
    p50, p99 = np.percentile(lat, [50, 99]) if lat.size else (float("nan"), float("nan"))
    return {
        "p50_us": p50,
        "p99_us": p99,
        "n": res["n"],
        "t_first": res["t_first"],
        "t_last": res["t_last"],
        "bytes": res["bytes"],
    }


def _rate(r: dict[str, float]) -> float:
    return (r["n"] - 1) / max(1e-9, r["t_last"] - r["t_first"])


def _gbps(r: dict[str, float]) -> float:
    return r["bytes"] / max(1e-9, r["t_last"] - r["t_first"]) / 1e9


async def _transport(quick: bool, repeats: int) -> list[Case]:
    n_lat = 300 if quick else 2000
    n_tp = 20_000 if quick else 100_000
    n_big = 100 if quick else 400
    cases: list[Case] = []

    async def paired(a: Any, b: Any) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        """Run `a` and `b` alternately `repeats` times, so drift in the machine's load hits both alike."""
        ra: list[dict[str, float]] = []
        rb: list[dict[str, float]] = []
        for _ in range(repeats):
            ra.append(await a())
            rb.append(await b())
        return ra, rb

    def med(runs: list[dict[str, float]], key: Any) -> float:
        """The median over runs of one figure (each figure's own median: p50 and p99 apart)."""
        return float(np.median([key(r) if callable(key) else r[key] for r in runs]))

    def el(*args: Any) -> Any:
        return lambda: _edgeloop(*args)

    def raw(*args: Any) -> Any:
        return lambda: _raw(*args)

    for cross, label in ((True, "inter-process"), (False, "in-process")):
        e, r = await paired(el(cross, n_lat, 200.0, [64], False), raw(cross, n_lat, 200.0, [64], False))
        tgt50 = "ratio <= 1.2" if cross else None
        tgt99 = "ratio <= 1.5" if cross else None
        cases.append(
            Case(f"latency 64B@200Hz {label} p50", med(e, "p50_us"), "us", med(r, "p50_us"), target=tgt50)
        )
        cases.append(
            Case(f"latency 64B@200Hz {label} p99", med(e, "p99_us"), "us", med(r, "p99_us"), target=tgt99)
        )

    # Issue 8: what per-edge metrics and flow tracking cost (on vs off, same run), target <= 5 % at p50.
    on, off = await paired(
        el(True, n_lat, 200.0, [64], False, "backpressure", 1000, True),
        el(True, n_lat, 200.0, [64], False, "backpressure", 1000, False),
    )
    cases.append(
        Case(
            "latency 64B@200Hz inter-process p50, metrics on vs off",
            med(on, "p50_us"),
            "us",
            med(off, "p50_us"),
            target="ratio <= 1.05",
        )
    )

    e, r = await paired(el(True, n_tp, 0.0, [64], False), raw(True, n_tp, 0.0, [64], False))
    cases.append(
        Case("throughput 64B inter-process", med(e, _rate), "msg/s", med(r, _rate), target="ratio >= 0.6")
    )

    for shape, label in (([480, 640, 3], "640x480x3"), ([1 << 20], "1MB")):
        e, r = await paired(
            el(True, n_lat // 2, 200.0, shape, True), raw(True, n_lat // 2, 200.0, shape, True)
        )
        cases.append(
            Case(f"latency {label}@200Hz inter-process p50", med(e, "p50_us"), "us", med(r, "p50_us"))
        )
        e, r = await paired(el(True, n_big, 0.0, shape, True), raw(True, n_big, 0.0, shape, True))
        cases.append(
            Case(
                f"bandwidth {label} inter-process",
                med(e, _gbps),
                "GB/s",
                med(r, _gbps),
                target="ratio >= 0.7",
            )
        )
    return cases


async def _overload_rss(seconds: float) -> list[Case]:
    """Worker RSS at idle, then under 10× overload on a drop_oldest edge: memory must stay bounded."""
    text = """
name: overload
agents: {a: {}, b: {}}
nodes:
  - {id: probe, uses: bench.transport:Probe, agent: a,
     params: {count: 100000000, rate_hz: 1000, shape: [65536], array: true}}
  - id: sink
    uses: sink.counter
    agent: b
    inputs: {in: {from: probe/out, policy: drop_oldest, queue: 100}}
    params: {delay_ms: 10, check_order: false}
"""
    launcher = Launcher(load_graph("overload.yaml", text=text), env={"EDGELOOP_LOG": "WARNING"})
    samples: list[tuple[float, int]] = []
    launcher.on_stats = lambda v: samples.append((time.monotonic(), v["agents"].get("b", {}).get("rss", 0)))
    task = asyncio.create_task(launcher.run(seconds))
    await asyncio.wait_for(launcher.started.wait(), 60)
    t0 = time.monotonic()
    result = await asyncio.wait_for(task, seconds + 60)
    after = [r for t, r in samples if t >= t0]
    idle = after[0] if after else 0
    third = [r for t, r in samples if t >= t0 + seconds / 3]
    peak_late = max(third) if third else 0
    peak_early = max((r for t, r in samples if t0 <= t < t0 + seconds / 3), default=0)
    e = result.view["edges"]["probe/out -> sink/in"]
    mib = 1024 * 1024
    return [
        Case("worker RSS at start", idle / mib, "MiB"),
        Case(
            f"worker RSS peak, last 2/3 of {seconds:.0f}s 10x overload",
            peak_late / mib,
            "MiB",
            peak_early / mib,
            target="ratio <= 1.1",
        ),
        Case("overload edge drops counted", float(e["dropped"]), "msgs"),
    ]


def run(argv: list[str]) -> list[Case]:
    ap = argparse.ArgumentParser(prog="edgeloop bench transport")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--overload-s", type=float, default=None)
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    overload = args.overload_s or (6.0 if args.quick else 30.0)

    async def main() -> list[Case]:
        return await _transport(args.quick, repeats) + await _overload_rss(overload)

    return asyncio.run(main())


async def _stop_once() -> float:
    nodes = "\n".join(
        f"  - {{id: r{i}, uses: transform.relay, agent: {'abc'[i % 3]}, "
        f"inputs: {{in: {'src/value' if i == 0 else f'r{i - 1}/out'}}}}}"
        for i in range(8)
    )
    text = f"""
name: stop
agents: {{a: {{}}, b: {{}}, c: {{}}}}
nodes:
  - {{id: src, uses: signal.sine, agent: a, params: {{rate_hz: 1000}}}}
{nodes}
  - {{id: sink, uses: sink.counter, agent: c, inputs: {{in: r7/out}}}}
"""
    launcher = Launcher(load_graph("stop.yaml", text=text), env={"EDGELOOP_LOG": "WARNING"})
    task = asyncio.create_task(launcher.run(None))
    await asyncio.wait_for(launcher.started.wait(), 60)
    await asyncio.sleep(1.0)  # let it run under load before stopping
    t0 = time.monotonic()
    launcher.stop_requested.set()
    result = await asyncio.wait_for(task, 30)
    if any("killed" in f for f in result.failures):
        return float("inf")
    return time.monotonic() - t0


def run_stop(argv: list[str]) -> list[Case]:
    """`edgeloop bench stop`: time from the stop request to every process gone, 10 nodes in 3 processes."""
    ap = argparse.ArgumentParser(prog="edgeloop bench stop")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    n = args.repeats or (3 if args.quick else 10)
    times = [asyncio.run(_stop_once()) for _ in range(n)]
    return [
        Case(
            "clean stop, 10 nodes / 3 processes, median", float(np.median(times)), "s", target="value <= 1.0"
        ),
        Case("clean stop, 10 nodes / 3 processes, worst", float(max(times)), "s", target="value <= 1.0"),
    ]


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("EDGELOOP_LOG", "WARNING")
    print(run(sys.argv[1:]))
