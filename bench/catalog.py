"""Benchmarks by name → `module:function`; each function takes argv and returns a list of `runtime.benchkit.Case`."""

from __future__ import annotations

__all__ = ["BENCHES"]

BENCHES: dict[str, str] = {
}
