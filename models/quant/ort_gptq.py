"""onnxruntime's 4-bit weight-only RTN and GPTQ (`MatMulNBitsQuantizer`) on one MatMul, for comparisons."""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["OrtWeightOnly", "matmul_model", "ort_weight_only", "dequantized_weight"]

_LOGGER = "onnxruntime.quantization.matmul_nbits_quantizer"


def matmul_model(w_kn: np.ndarray) -> onnx.ModelProto:
    """y = x @ W with W [K, N] as an initializer (the graph `MatMulNBitsQuantizer` rewrites)."""
    k, n = w_kn.shape
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", n])],
        [numpy_helper.from_array(w_kn.astype(np.float32), "W")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


class _Count:
    """A counter that `copy.deepcopy` shares (ORT deep-copies the reader before reading it)."""

    def __init__(self) -> None:
        self.n = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> _Count:
        return self


@dataclass
class OrtWeightOnly:
    """What ORT produced: the MatMulNBits model, how many calibration batches it read, its log lines."""

    model: onnx.ModelProto
    algorithm: str
    batches_read: int
    log: list[str] = field(default_factory=list)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class _LinalgUpperCholesky:
    """np.linalg with `cholesky` returning the upper factor, so that ORT's `cholesky(inv(H)).T` is lower."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np.linalg, name)

    @staticmethod
    def cholesky(a: np.ndarray) -> np.ndarray:
        return np.linalg.cholesky(a).T


class _NumpyUpperCholesky:
    linalg = _LinalgUpperCholesky()

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


@contextlib.contextmanager
def _gptq_rows_fixed() -> Iterator[None]:
    """Correct the one indexing error in ORT's vendored GPTQ (`neural_compressor/weight_only.py`).

    It computes Hinv = U (upper Cholesky factor of H⁻¹, as the reference does) but then reads the update
    row as a column, `Hinv1[i:, i]`, and the lazy block as `Hinv[i2:, i1:i2]`; both are zero below the
    diagonal of U, so no error is ever propagated and its "GPTQ" is per-group RTN [SCIENCE 4.8.3]. With
    `cholesky` returning U, `.T` makes Hinv = Uᵀ and those slices become U[i, i:] and U[i1:i2, i2:]ᵀ, the
    reference's update. Nothing else in the module calls cholesky.
    """
    from onnxruntime.quantization.neural_compressor import weight_only

    saved = weight_only.np
    weight_only.np = _NumpyUpperCholesky()
    try:
        yield
    finally:
        weight_only.np = saved


def ort_weight_only(
    w_kn: np.ndarray,
    x_cal: np.ndarray,
    method: str,
    group: int = 128,
    batch: int = 64,
    *,
    fix_gptq_indexing: bool = False,
) -> OrtWeightOnly:
    """4-bit asymmetric weights for y = x @ W by ORT's `MatMulNBitsQuantizer` with `method` "rtn" or "gptq".

    The group size goes to the quantizer (`block_size`, `is_symmetric=False`); for GPTQ the calibration
    rows `x_cal` [n, K] are fed through a `CalibrationDataReader` in batches of `batch`, and the GPTQ
    config's own `block_size` (its lazy-batch size, not the group) is left at 128.
    """
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        GPTQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
        RTNWeightOnlyQuantConfig,
    )

    count = _Count()
    feeds = [{"x": x_cal[i : i + batch].astype(np.float32)} for i in range(0, len(x_cal), batch)]

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.count = count
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self.it, None)
            if item is not None:
                self.count.n += 1
            return item

    if method == "gptq":
        cfg: Any = GPTQWeightOnlyQuantConfig(calibration_data_reader=_Reader(), percdamp=0.01)
    elif method == "rtn":
        cfg = RTNWeightOnlyQuantConfig()
    else:
        raise ValueError(f"ORT weight-only method {method!r}: use 'rtn' or 'gptq'")
    log = logging.getLogger(_LOGGER)
    cap, level = _Capture(), log.level
    log.addHandler(cap)
    log.setLevel(logging.INFO)
    fix = _gptq_rows_fixed() if fix_gptq_indexing else contextlib.nullcontext()
    try:
        with warnings.catch_warnings(), fix:
            warnings.simplefilter("ignore")
            q = MatMulNBitsQuantizer(
                matmul_model(w_kn), block_size=group, is_symmetric=False, algo_config=cfg
            )
            q.process()
    finally:
        log.removeHandler(cap)
        log.setLevel(level)
    model = q.model.model if hasattr(q.model, "model") else q.model
    return OrtWeightOnly(copy.deepcopy(model), str(cfg.algorithm), count.n, cap.lines)


def dequantized_weight(model: onnx.ModelProto, k: int) -> np.ndarray:
    """W [K, N] as ORT's kernel applies it: the model run on the K×K identity (1 thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out: np.ndarray = sess.run(None, {"x": np.eye(k, dtype=np.float32)})[0]
    return out
