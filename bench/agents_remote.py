"""Agents on several machines: MQTT fleet telemetry at 10 Hz per agent (QoS 1, nothing lost) and CURVE's cost.

Two measurements for issue 7 (merged into `edgeloop bench agents` by the lead; `edgeloop bench
agents_remote` runs them alone):

- **Telemetry**: N agents (FleetClients spread over 4 processes, as on N machines) each publish
  telemetry at 10 Hz at QoS 1 for T seconds through the broker; an observer (the launcher's seat,
  `watch_telemetry=True`) counts every agent's messages by sequence number. Targets: each agent's
  received rate ≥ 9.5 Hz and zero lost. Against the embedded amqtt broker and, when installed,
  mosquitto (what fleets should use).
- **CURVE cost**: the same two-agent graph (`bench.transport:Probe` → `ProbeSink`, PUSH/PULL with
  edgeloop's own socket setup) run with `--transport tcp` and `--transport curve` in the same run:
  throughput of 64 B messages, latency at 200 Hz, bandwidth of 1 MB arrays. Raw libzmq loses 3.1× at
  100 B and 7.5× at 1 MB to CURVE [SCIENCE 5.2 [M]]; edgeloop's per-message Python work is paid with or
  without CURVE, so its relative loss must be no worse: targets ratio ≥ 1/3.1 and ≥ 1/7.5 [D].
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.benchkit import Case
from runtime.fleet import FleetClient, TelemetryReceived, start_embedded_broker_process
from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.security import generate_keypair
from runtime.wiring import free_tcp_port

__all__ = ["cases", "run"]

RATE_HZ = 10.0  # the telemetry target per agent
PROCS = 4  # publisher processes: agents are spread over them
DRAIN_S = 20.0  # after the last publish, how long the observer waits for late messages before counting losses


# ----- MQTT telemetry -----
async def _publish(url: str, names: list[str], seconds: float) -> dict[str, Any]:
    """One publisher process: every agent publishes {seq, t_pub} at RATE_HZ, paced on the loop clock."""
    clients = [FleetClient(url, n, "bench", heartbeat_s=1.0, connect_timeout_s=30.0) for n in names]
    for c in clients:
        await c.__aenter__()
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # go: every agent of every process is connected

    async def agent(c: FleetClient) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = failed = 0
        while (due := t0 + n / RATE_HZ) < t0 + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not await c.publish_telemetry({"t_pub": time.time(), "rate_hz": RATE_HZ}, timeout_s=2.0):
                failed += 1
            n += 1
        return n, failed

    results = await asyncio.gather(*(agent(c) for c in clients))
    await asyncio.sleep(1.0)  # let the last PUBACKed messages reach the observer before going offline
    for c in clients:
        await c.aclose()
    return {n: {"sent": s, "failed": f} for n, (s, f) in zip(names, results, strict=True)}


def _publisher_main(argv: list[str]) -> int:
    url, seconds, *names = argv
    print(json.dumps(asyncio.run(_publish(url, names, float(seconds)))), flush=True)
    return 0


async def _telemetry(url: str, n_agents: int, seconds: float, procs: int) -> dict[str, Any]:
    names = [f"agent{i:03d}" for i in range(n_agents)]
    groups = [names[i::procs] for i in range(min(procs, n_agents))]
    got: dict[str, list[int]] = {n: [] for n in names}
    lat_ms: list[float] = []
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    env = {**os.environ, "EDGELOOP_LOG": "WARNING"}
    async with FleetClient(
        url, "observer", "bench", watch_telemetry=True, queue_size=4096, connect_timeout_s=30.0
    ) as obs:
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.agents_remote", "publish", url, str(seconds), *g],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for g in groups
        ]
        try:
            for p in children:
                line = await asyncio.wait_for(asyncio.to_thread(p.stdout.readline), 120)  # type: ignore[union-attr]
                if line.strip() != "READY":
                    raise RuntimeError(f"telemetry publisher did not start: {line!r}")

            async def observe() -> None:
                async for ev in obs.events():
                    if isinstance(ev, TelemetryReceived) and ev.agent in got:
                        now = time.time()
                        got[ev.agent].append(ev.telemetry.seq)
                        first.setdefault(ev.agent, now)
                        last[ev.agent] = now
                        lat_ms.append((now - float(ev.telemetry.data.get("t_pub", now))) * 1e3)

            watcher = asyncio.create_task(observe())
            for p in children:
                p.stdin.write("go\n")  # type: ignore[union-attr]
                p.stdin.flush()  # type: ignore[union-attr]
            sent: dict[str, Any] = {}
            for p in children:
                out = await asyncio.wait_for(asyncio.to_thread(p.stdout.read), seconds + 120)  # type: ignore[union-attr]
                sent.update(json.loads(out))
                p.wait(30)
            # Late is not lost: wait (bounded) until every published message has arrived.
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and any(len(set(got[n])) < s["sent"] for n, s in sent.items()):
                await asyncio.sleep(0.1)  # polling the counts with a deadline
            watcher.cancel()
        finally:
            for p in children:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    lost = sum(max(0, s["sent"] - len(set(got[n]))) for n, s in sent.items())
    dups = sum(len(v) - len(set(v)) for v in got.values())
    # Rate as received: messages over the span they arrived in, per agent; the slowest agent counts.
    rates = [(len(v) - 1) / max(1e-9, last[n] - first[n]) for n, v in got.items() if len(v) > 1]
    return {
        "min_rate": min(rates) if len(rates) == n_agents else 0.0,
        "lost": lost,
        "dups": dups,
        "failed": sum(s["failed"] for s in sent.values()),
        "lat_ms": lat_ms,
        "total": sum(len(v) for v in got.values()),
    }


def _start_mosquitto(tmp: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    exe = shutil.which("mosquitto")
    if exe is None:
        return None
    port = free_tcp_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n"
    )
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)  # polling the port, bounded
    proc.kill()
    return None


async def _telemetry_cases(quick: bool) -> list[Case]:
    seconds, procs = (3.0, 2) if quick else (10.0, PROCS)
    cases: list[Case] = []
    brokers: list[tuple[str, str, Any]] = []
    amqtt = start_embedded_broker_process()
    brokers.append(("amqtt", amqtt.url, amqtt.stop))
    tmp = Path(tempfile.mkdtemp(prefix="edgeloop-bench-mqtt-"))
    mosq = None if quick else _start_mosquitto(tmp)  # quick: the default (embedded) broker only
    if mosq is not None:
        brokers.append(("mosquitto", mosq[1], mosq[0].terminate))
    try:
        # The embedded broker at the quick size and at 16 agents, mosquitto (for fleets) at 16.
        runs = [("amqtt", 4)] if quick else [("amqtt", 4), ("amqtt", 16), ("mosquitto", 16)]
        urls = {kind: url for kind, url, _ in brokers}
        for kind, n_agents in runs:
            if kind not in urls:
                continue
            r = await _telemetry(urls[kind], n_agents, seconds, procs)
            label = f"MQTT telemetry {RATE_HZ:.0f} Hz x {n_agents} agents QoS 1 ({kind})"
            cases.append(Case(f"{label}: slowest agent's rate", r["min_rate"], "Hz", target="value >= 9.5"))
            lost = float(r["lost"])
            cases.append(Case(f"{label}: lost (never received)", lost, "msgs", target="value == 0"))
            cases.append(Case(f"{label}: publishes not acked within 2 s", float(r["failed"]), "msgs"))
            cases.append(Case(f"{label}: duplicates received", float(r["dups"]), "msgs"))
            lat = np.asarray(r["lat_ms"]) if r["lat_ms"] else np.asarray([np.nan])
            cases.append(Case(f"{label}: publish->observer p50", float(np.percentile(lat, 50)), "ms"))
            cases.append(Case(f"{label}: publish->observer p99", float(np.percentile(lat, 99)), "ms"))
    finally:
        for _, _, stop in brokers:
            stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return cases


# ----- CURVE against plain tcp -----
def _graph(count: int, rate_hz: float, shape: list[int], array: bool) -> str:
    return f"""
name: bench-curve
agents: {{a: {{}}, b: {{}}}}
nodes:
  - {{id: probe, uses: bench.transport:Probe, agent: a,
     params: {{count: {count}, rate_hz: {rate_hz}, shape: {shape}, array: {str(array).lower()}}}}}
  - {{id: sink, uses: bench.transport:ProbeSink, agent: b, inputs: {{in: {{from: probe/out, policy: backpressure,
     queue: 1000}}}}}}
"""


async def _edge(
    transport: str, keys: Path, count: int, rate_hz: float, shape: list[int], array: bool
) -> dict[str, float]:
    g = load_graph("bench-curve.yaml", text=_graph(count, rate_hz, shape, array))
    launcher = Launcher(g, transport=transport, keys_dir=keys, env={"EDGELOOP_LOG": "WARNING"})
    try:
        result = await asyncio.wait_for(launcher.run(None), 300)
    except TimeoutError:
        raise RuntimeError(
            f"edgeloop run ({transport}, {count} x {shape}) did not finish in 300 s: "
            f"{ {a.name: a.state for a in launcher.agents.values()} }, {launcher.snapshots}"
        ) from None
    if result.exit_code:
        raise RuntimeError(f"edgeloop run ({transport}) failed: {result.failures}")
    return dict(result.view["nodes"]["sink"]["counters"])


def _rate(r: dict[str, float]) -> float:
    return (r["n"] - 1) / max(1e-9, r["t_last"] - r["t_first"])


def _gbps(r: dict[str, float]) -> float:
    return r["bytes"] / max(1e-9, r["t_last"] - r["t_first"]) / 1e9


async def _curve_cases(quick: bool) -> list[Case]:
    keys = Path(tempfile.mkdtemp(prefix="edgeloop-bench-keys-"))
    for name in ("a", "b"):
        generate_keypair(keys, name)
    n_tp, n_lat, n_big, repeats = (5000, 200, 30, 1) if quick else (50_000, 1000, 200, 3)

    async def both(key: str, count: int, rate_hz: float, shape: list[int], array: bool) -> dict[str, float]:
        """Median over repeats, tcp and curve interleaved so load changes on a shared machine hit both alike."""
        got: dict[str, list[float]] = {"tcp": [], "curve": []}
        for _ in range(repeats):
            for t in ("tcp", "curve"):
                r = await _edge(t, keys, count, rate_hz, shape, array)
                got[t].append({"rate": _rate(r), "gbps": _gbps(r)}.get(key, r.get(key, float("nan"))))
        return {t: float(np.median(v)) for t, v in got.items()}

    cases: list[Case] = []
    try:
        tp = await both("rate", n_tp, 0.0, [64], False)
        cases.append(
            Case(
                "throughput 64B inter-process, CURVE vs plain tcp",
                tp["curve"],
                "msg/s",
                tp["tcp"],
                target=f"ratio >= {1 / 3.1:.2f}",
            )
        )
        if not quick:
            for q in ("p50_us", "p99_us"):
                lat = await both(q, n_lat, 200.0, [64], False)
                cases.append(
                    Case(f"latency 64B@200Hz {q[:3]}, CURVE vs plain tcp", lat["curve"], "us", lat["tcp"])
                )
        big = await both("gbps", n_big, 0.0, [1 << 20], True)
        cases.append(
            Case(
                "bandwidth 1MB inter-process, CURVE vs plain tcp",
                big["curve"],
                "GB/s",
                big["tcp"],
                target=f"ratio >= {1 / 7.5:.2f}",
            )
        )
    finally:
        shutil.rmtree(keys, ignore_errors=True)
    return cases


def cases(quick: bool) -> list[Case]:
    """Every case of this module (the lead merges them into `edgeloop bench agents`)."""

    async def main() -> list[Case]:
        return await _telemetry_cases(quick) + await _curve_cases(quick)

    return asyncio.run(main())


def run(argv: list[str]) -> list[Case]:
    """`edgeloop bench agents_remote [--quick]`."""
    ap = argparse.ArgumentParser(prog="edgeloop bench agents_remote")
    ap.add_argument("--quick", action="store_true")
    return cases(ap.parse_args(argv).quick)


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        sys.exit(_publisher_main(sys.argv[2:]))
    from runtime.benchkit import print_table

    print_table(run(sys.argv[1:]), title="edgeloop bench agents_remote")
