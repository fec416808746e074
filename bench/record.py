"""Recording cost: MCAP writer/reader rates, bytes per message, and lossless end-to-end recording throughput."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.benchkit import Case
from runtime.codec import encode
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.message import Message
from runtime.recording import RecordingReader, RecordingWriter
from runtime.recording.graph import add_recorder, recordable_topics
from runtime.recording.info import summarize

__all__ = ["run"]

_EVENT = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])


def _payloads(kind: str, n: int) -> list[Any]:
    rng = np.random.default_rng(0)
    if kind == "counter":  # source.counter with a 64-byte pad
        return [{"i": i, "pad": np.zeros(64, np.uint8)} for i in range(n)]
    if kind == "imu":  # one 6-axis float32 sample
        return [rng.standard_normal(6).astype(np.float32) for _ in range(n)]
    ev = np.zeros(1000, _EVENT)  # an event-camera batch of 1000 events, time-sorted
    out = []
    for i in range(n):
        ev = ev.copy()
        ev["x"], ev["y"] = rng.integers(0, 640, 1000), rng.integers(0, 480, 1000)
        ev["t"] = i * 10_000 + np.sort(rng.integers(0, 10_000, 1000))
        ev["p"] = rng.integers(0, 2, 1000)
        out.append(ev)
    return out


def _writer_cases(tmp: Path, n: int) -> list[Case]:
    cases = []
    for kind, count in (("counter", n), ("imu", n), ("events1k", max(200, n // 20))):
        msgs = [
            Message(f"{kind}/out", i, 10**18 + i * 1000, 10**18 + i * 1000 + 500, p)
            for i, p in enumerate(_payloads(kind, count))
        ]
        t0 = time.perf_counter()
        for m in msgs:
            encode(m)
        t_encode = time.perf_counter() - t0
        for comp in ("zstd", "lz4", "none"):
            path = tmp / f"{kind}-{comp}.mcap"
            t0 = time.perf_counter()
            with RecordingWriter(path, compression=comp) as w:
                for m in msgs:
                    w.write(m)
            t_write = time.perf_counter() - t0
            size = path.stat().st_size
            if comp == "zstd":
                cases.append(
                    Case(
                        f"write {kind} ({comp}) vs wire encode only",
                        count / t_write,
                        "msg/s",
                        baseline=count / t_encode,
                    )
                )
                t0 = time.perf_counter()
                got = sum(1 for _ in RecordingReader(path).messages())
                cases.append(Case(f"read+decode {kind} ({comp})", got / (time.perf_counter() - t0), "msg/s"))
            raw = sum(
                len(b) if isinstance(b, bytes) else memoryview(b).nbytes
                for m in msgs[:200]
                for b in encode(m)[1:]
            ) / min(200, count)
            cases.append(
                Case(f"file size {kind} ({comp}) vs wire bytes", size / count, "B/msg", baseline=raw)
            )
    return cases


_GRAPH = """
name: recbench
agents: {{src: {{}}, dst: {{}}}}
nodes:
  - {{id: cnt, uses: source.counter, agent: src, params: {{count: {n}, payload_bytes: 64}}}}
  - id: sink
    uses: sink.counter
    agent: dst
    inputs: {{a: {{from: cnt/out, policy: backpressure, queue: 100}}}}
"""


def _e2e_cases(tmp: Path, n: int) -> list[Case]:
    g = load_graph("recbench.yaml", text=_GRAPH.format(n=n))

    async def timed(graph: Any) -> float:
        result = await asyncio.wait_for(Launcher(graph, env={"EDGELOOP_LOG": "WARNING"}).run(None), 300)
        if result.exit_code != 0:
            raise RuntimeError(f"benchmark graph failed: {result.failures}")
        return float(result.duration_s)

    base = asyncio.run(timed(g))
    path = tmp / "e2e.mcap"
    rec = asyncio.run(timed(add_recorder(g, path, topics=recordable_topics(g))))
    got = summarize(path).topics["cnt/out"].messages
    return [
        Case("lossless record, 2 processes + recorder vs no recorder", n / rec, "msg/s", baseline=n / base),
        Case("fraction recorded (lossless)", got / n, "", target="value == 1"),
    ]


def run(argv: list[str]) -> list[Case]:
    quick = "--quick" in argv
    n = 2000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="edgeloop-recbench-") as d:
        tmp = Path(d)
        return _writer_cases(tmp, n) + _e2e_cases(tmp, n)
