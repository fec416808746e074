"""Benchmarks by name → `module:function`; each function takes argv and returns a list of `runtime.benchkit.Case`."""

from __future__ import annotations

__all__ = ["BENCHES"]

BENCHES: dict[str, str] = {
    "hw": "bench.hw:run",
    "transport": "bench.transport:run",
    "stop": "bench.transport:run_stop",
    "events": "bench.events:run",
    "agents": "bench.agents:run",
    "record": "bench.record:run",
    "dfa": "bench.dfa:run",
    "agents_remote": "bench.agents_remote:run",
    "quant": "bench.quant:run",
    "models": "bench.models:run",
}
