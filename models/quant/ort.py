"""ONNX Runtime int8 quantization (static QDQ, dynamic) and session helpers for exported models."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

__all__ = [
    "quantize_int8_static",
    "quantize_int8_dynamic",
    "make_session",
    "op_types",
    "cpu_has_vnni",
    "cpu_flags",
]

#: The x86 flags that decide ORT's int8 and 4-bit kernels (report them with every ORT figure).
_KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")


def cpu_flags() -> list[str]:
    """Which of the int8-relevant x86 flags this CPU reports (Linux /proc/cpuinfo; [] when unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    have = set(line.split(":", 1)[-1].split())
    return [f for f in _KERNEL_FLAGS if f in have]


def cpu_has_vnni() -> bool:
    """True if the CPU has AVX-512 VNNI or AVX-VNNI (Linux /proc/cpuinfo; False when unknown).

    Without VNNI, onnxruntime's fused int8 x86 kernels multiply u8×s8 pairs with 16-bit saturating adds
    (vpmaddubsw), so full-range int8 weights can overflow: measured here on an AVX2-only EPYC, a static
    QDQ MLP had 21 % relative output error with full range and 1.2 % with `reduce_range` (7-bit weights).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


class _Reader:
    """onnxruntime `CalibrationDataReader` over in-memory feeds (`get_next()` → dict or None)."""

    def __init__(self, feeds: Iterable[Mapping[str, np.ndarray]]) -> None:
        self._it = iter([dict(f) for f in feeds])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # some calibrators call it; our feeds are consumed once
        pass


def _quiet() -> warnings.catch_warnings[None]:
    w = warnings.catch_warnings()
    w.__enter__()
    warnings.simplefilter("ignore")  # ORT's quantizer warns about opsets/pre-processing; not actionable here
    logging.getLogger("root").setLevel(logging.ERROR)
    return w


def quantize_int8_static(
    onnx_in: str | Path,
    onnx_out: str | Path,
    calib: Iterable[Mapping[str, np.ndarray]],
    per_channel: bool = True,
    op_types: tuple[str, ...] = ("Gemm", "MatMul", "Conv"),
    preprocess: bool = True,
    reduce_range: bool | None = None,
) -> Path:
    """Static int8 QDQ, S8S8, MinMax calibration: the recommended CPU default [SCIENCE 4.5].

    `calib` yields input feeds ({input name: array}). Only `op_types` are quantized, so the membranes and
    comparisons of a one-step SNN graph stay fp32 [SCIENCE 4.6]. `reduce_range` None: on when the CPU has
    no VNNI (see `cpu_has_vnni`).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    w = _quiet()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(onnx_in)
            if preprocess:
                pre = Path(tmp) / "pre.onnx"
                try:
                    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                    src = pre
                except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the raw graph
                    src = Path(onnx_in)
            quantize_static(
                str(src),
                str(onnx_out),
                _Reader(calib),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types),
                per_channel=per_channel,
                reduce_range=(not cpu_has_vnni()) if reduce_range is None else reduce_range,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
    finally:
        w.__exit__(None, None, None)
    return Path(onnx_out)


def quantize_int8_dynamic(
    onnx_in: str | Path,
    onnx_out: str | Path,
    per_channel: bool = False,
    op_types: tuple[str, ...] = ("Gemm", "MatMul"),
    reduce_range: bool | None = None,
) -> Path:
    """Dynamic int8 (weights int8 offline, activations at run time). Avoid for Conv: 2–6× slower [SCIENCE 4.5]."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    w = _quiet()
    try:
        quantize_dynamic(
            str(onnx_in),
            str(onnx_out),
            op_types_to_quantize=list(op_types),
            per_channel=per_channel,
            reduce_range=(not cpu_has_vnni()) if reduce_range is None else reduce_range,
            weight_type=QuantType.QInt8,
        )
    finally:
        w.__exit__(None, None, None)
    return Path(onnx_out)


def make_session(
    path: str | Path,
    threads: int = 1,
    providers: tuple[str, ...] = ("CPUExecutionProvider",),
) -> ort.InferenceSession:
    """An InferenceSession with a fixed intra-op thread count (benchmark with fixed threads [SCIENCE 4.5])."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))


def op_types(path: str | Path) -> list[str]:
    """The op types of a saved model, in graph order (check what a quantizer actually produced)."""
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]
