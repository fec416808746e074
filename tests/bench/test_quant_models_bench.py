"""bench quant / bench models: the latency parts run end to end at tiny sizes and report cases with targets.

(The GPTQ-vs-onnxruntime comparison trains a 256-wide teacher and runs ORT's Python GPTQ: bench-only.)
"""

from __future__ import annotations

import pytest

from bench.models import snn_step_latency
from bench.quant import int8_latency

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_int8_and_snn_step_latency_cases() -> None:
    cases = int8_latency([32, 64, 10], 8, 3)
    assert [c.unit for c in cases] == ["ms", "x", "x", "x"] and cases[1].target == "value >= 2"
    steps = snn_step_latency(3)
    assert len(steps) == 4 and all(c.value > 0 and c.unit == "us" for c in steps)
