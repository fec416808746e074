"""`edgeloop bench quant`: quantizer error tables, our GPTQ vs onnxruntime's, and ORT int8 / 4-bit latency."""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from bench.models import median_us
from models.mlp import MLP
from models.onnx_export import export_onnx
from models.quant import LayerQuant, QuantConfig, QuantSpec, TesseraQConfig, gptq, quantize_model, rtn_layer
from models.quant.nbits import gemm_to_nbits, matmul_nbits
from models.quant.ort import (
    cpu_flags,
    cpu_has_vnni,
    make_session,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from models.quant.reference import reference_fasterquant
from models.quant.testbed import make_testbed, relative_logit_error
from runtime.benchkit import Case

__all__ = [
    "run",
    "error_table",
    "reference_loop_cases",
    "ort_gptq_cases",
    "event2vec_time_cases",
    "int8_latency",
]

#: bench label → (method, TesseraQ blocks, TesseraQ settings changed from the defaults). "tesseraq" is
#: layer by layer, "tesseraq-block" reconstructs the whole MLP ("net") at once, "tesseraq-default" is
#: what `QuantConfig("tesseraq")` does (blocks found automatically: "net" for the MLP).
METHODS: dict[str, tuple[str, tuple[str, ...] | str, dict[str, Any]]] = {
    "rtn": ("rtn", (), {}),
    "gptq": ("gptq", (), {}),
    "gptaq": ("gptaq", (), {}),
    "tesseraq": ("tesseraq", (), {}),
    "tesseraq-block": ("tesseraq", ("net",), {}),
    "tesseraq-default": ("tesseraq", "auto", {}),
}
#: TesseraQ default with one reference choice switched off (W3 only), and the recipe before issue 15.
ABLATIONS: dict[str, tuple[str, tuple[str, ...] | str, dict[str, Any]]] = {
    "layer by layer": ("tesseraq", (), {}),
    "one quantile pooled over the block": ("tesseraq", "auto", {"per_layer_quantile": False}),
    "Adam state carried across rounds": ("tesseraq", "auto", {"fresh_optimizer": False}),
    "c = 2 sigmoid(u)": ("tesseraq", "auto", {"scale_param": "sigmoid"}),
    "full batch": ("tesseraq", "auto", {"batch_size": None}),
    "min-max start": ("tesseraq", "auto", {"init": "minmax"}),
    "all five (the recipe before #15)": (
        "tesseraq",
        (),
        {
            "per_layer_quantile": False,
            "fresh_optimizer": False,
            "scale_param": "sigmoid",
            "batch_size": None,
            "init": "minmax",
        },
    ),
}


def _quantized_error(
    tb: Any, bits: int, how: tuple[str, tuple[str, ...] | str, dict[str, Any]], steps_per_round: int
) -> tuple[float, float]:
    method, blocks, changes = how
    q = copy.deepcopy(tb.model)
    t0 = time.perf_counter()
    tq = replace(TesseraQConfig(steps_per_round), **changes)
    quantize_model(q, tb.x_cal, QuantConfig(method, QuantSpec(bits), tesseraq=tq, blocks=blocks))
    return relative_logit_error(q, tb.model, tb.x_test), time.perf_counter() - t0


def error_table(
    bits: tuple[int, ...],
    seeds: tuple[int, ...],
    hidden: int,
    n_cal: int,
    n_test: int,
    steps_per_round: int,
    ablation_bits: tuple[int, ...] = (3,),
) -> list[Case]:
    """Median relative logit error over seeds on the SCIENCE 4.4 testbed (MLP 32-hidden×3-10, float64)."""
    errs: dict[tuple[str, int], list[float]] = {}
    secs: dict[str, list[float]] = {m: [] for m in METHODS}
    for seed in seeds:
        tb = make_testbed(seed, hidden=hidden, depth=3, n_cal=n_cal, n_test=n_test)
        for b in bits:
            for m, how in METHODS.items():
                e, t = _quantized_error(tb, b, how, steps_per_round)
                secs[m].append(t)
                errs.setdefault((m, b), []).append(e)
            for label, how in ABLATIONS.items() if b in ablation_bits else ():
                errs.setdefault((label, b), []).append(_quantized_error(tb, b, how, steps_per_round)[0])
    med = {k: statistics.median(v) for k, v in errs.items()}
    # (case, method, its baseline, target at b bits): SCIENCE 4.4 test margins RTN→GPTQ ≥ 25 %, GPTQ→GPTAQ
    # ≥ 5 % at W3/W4; TesseraQ beats GPTQ at W2; block reconstruction against TesseraQ layer by layer.
    comparisons: tuple[tuple[str, str, str, Callable[[int], str | None]], ...] = (
        ("GPTQ vs RTN", "gptq", "rtn", lambda b: "ratio <= 0.75" if b in (3, 4) else None),
        ("GPTAQ vs GPTQ", "gptaq", "gptq", lambda b: "ratio <= 0.95" if b in (3, 4) else None),
        ("TesseraQ vs GPTQ", "tesseraq", "gptq", lambda b: "ratio < 1" if b == 2 else None),
        ("TesseraQ block (whole MLP) vs layer by layer", "tesseraq-block", "tesseraq", lambda b: None),
    )
    cases = []
    for b in bits:
        cases.append(Case(f"W{b} RTN rel. logit error", med[("rtn", b)], "rel L2"))
        for label, m, base, target in comparisons:
            cases.append(
                Case(f"W{b} {label}", med[(m, b)], "rel L2", baseline=med[(base, b)], target=target(b))
            )
    for b in bits:  # issue 15: the default (block reconstruction, reference recipe) against GPTQ
        cases.append(
            Case(
                f"tesseraq default vs gptq error, W{b}",
                med[("tesseraq-default", b)],
                "rel L2",
                baseline=med[("gptq", b)],
                target="ratio < 1" if b == 3 else None,
            )
        )
    for b in ablation_bits if set(ablation_bits) <= set(bits) else ():
        for label in ABLATIONS:
            dflt = med[("tesseraq-default", b)]
            cases.append(Case(f"W{b} TesseraQ default, {label}, vs default", med[(label, b)], "rel L2", dflt))
    for m in METHODS:
        cases.append(Case(f"{m} time per model (4 layers)", statistics.median(secs[m]), "s"))
    return cases


def reference_loop_cases(seed: int = 0, hidden: int = 128, n_cal: int = 512) -> list[Case]:
    """Integers of our GPTQ/GPTAQ vs the reference `fasterquant` loop (models.quant.reference), on a
    testbed layer's real H and G, over group sizes below/at/above the lazy block, act-order and static."""
    tb = make_testbed(seed, hidden=hidden, depth=3, n_cal=n_cal, n_test=10)
    lin0, lin2 = cast(torch.nn.Linear, tb.model.net[0]), cast(torch.nn.Linear, tb.model.net[2])
    w1, b1 = lin0.weight.detach().double(), lin0.bias.detach().double()
    w = lin2.weight.detach().double()
    x = tb.x_cal.double()
    x_fp = torch.relu(x @ w1.T + b1)
    x_q = torch.relu(x @ rtn_layer(w1, QuantSpec(3)).dequant().T + b1)  # a quantized earlier layer: ΔX ≠ 0
    n = len(x_q)
    h, g = 2 * x_q.T @ x_q / n, 2 * (x_fp - x_q).T @ x_q / n
    settings = [(16, False, False, 64), (32, True, False, 64), (32, True, True, 64), (96, False, False, 64)]
    out = []
    for label, gm in (("gptq", None), ("gptaq", g)):
        equal = total = 0
        for gs, act, static, bs in settings:
            ours = gptq(w, h, QuantSpec(3, gs), act_order=act, static_groups=static, block_size=bs, g=gm)
            _, ints = reference_fasterquant(
                w, h, 3, blocksize=bs, groupsize=gs, actorder=act, static_groups=static, dXXT=gm
            )
            equal += int((ours.qweight == ints).sum())
            total += ints.numel()
        frac = equal / total
        name = (
            f"{label} groups: integers equal to reference loop (W3, g16/32/96, block 64, act-order, static)"
        )
        out.append(Case(name, frac, "fraction", baseline=1.0, target="value == 1"))
    return out


def ort_gptq_cases(hidden: int, n_cal: int, n_test: int, group: int = 128) -> list[Case]:
    """4-bit, group 128, asymmetric, one hidden layer of the testbed MLP: onnxruntime's RTN and GPTQ
    (`MatMulNBitsQuantizer`, calibration through its data reader), ORT's GPTQ with its indexing error
    fixed, and ours; every weight applied by ORT's MatMulNBits kernel. Errors on held-out activations."""
    import onnxruntime

    from models.quant.ort_gptq import dequantized_weight, ort_weight_only

    tb = make_testbed(0, hidden=hidden, depth=3, n_cal=n_cal, n_test=n_test)
    lin = cast(torch.nn.Linear, tb.model.net[2])  # second Linear (hidden × hidden)
    with torch.no_grad():
        acts = torch.relu(tb.model.net[0](torch.cat([tb.x_cal, tb.x_test]))).float().numpy()
    x_cal, x_test = acts[:n_cal], acts[n_cal:]
    w = lin.weight.detach().float()  # [N, K]
    w_kn = w.numpy().T.copy()
    k = w_kn.shape[0]
    ref = x_test @ w_kn

    def rel(w_q: np.ndarray) -> float:
        return float(np.linalg.norm(x_test @ w_q - ref) / np.linalg.norm(ref))

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").propagate = False
    t0 = time.perf_counter()
    shipped = ort_weight_only(w_kn, x_cal, "gptq", group)
    t_ort = time.perf_counter() - t0
    if shipped.batches_read == 0 or not any("GPTQ" in line for line in shipped.log):
        raise RuntimeError(f"ORT's GPTQ did not run on the calibration data: {shipped}")
    e = {
        "rtn": rel(dequantized_weight(ort_weight_only(w_kn, x_cal, "rtn", group).model, k)),
        "gptq": rel(dequantized_weight(shipped.model, k)),
        "gptq-fixed": rel(
            dequantized_weight(ort_weight_only(w_kn, x_cal, "gptq", group, fix_gptq_indexing=True).model, k)
        ),
    }
    t0 = time.perf_counter()
    xc = torch.from_numpy(x_cal).double()
    h = 2 * xc.T @ xc / len(xc)
    lq: LayerQuant = gptq(w.double(), h, QuantSpec(4, group))
    t_ours = time.perf_counter() - t0
    node, inits = matmul_nbits(lq, "x", "y", "ours")
    from onnx import helper

    g = helper.make_graph(
        [node],
        "ours",
        [helper.make_tensor_value_info("x", 1, ["b", k])],
        [helper.make_tensor_value_info("y", 1, ["b", w.shape[0]])],
        inits,
    )
    ours = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    ours.ir_version = 9
    e["ours"] = rel(dequantized_weight(ours, k))
    q_ref, _ = reference_fasterquant(w.double(), h, 4, groupsize=group)
    e["reference"] = rel(q_ref.numpy().T.astype(np.float32))
    v = onnxruntime.__version__
    fixed = "ORT's GPTQ with its Hinv row/column indexing fixed"
    return [
        Case(
            f"ort gptq vs ort rtn error (onnxruntime {v} as shipped, {shipped.batches_read} calibration batches "
            "read)",
            e["gptq"],
            "rel L2",
            baseline=e["rtn"],
            target="ratio <= 0.9",
        ),
        Case(
            f"{fixed} vs ort rtn error", e["gptq-fixed"], "rel L2", baseline=e["rtn"], target="ratio <= 0.9"
        ),
        Case(
            f"ours gptq vs ort gptq error ({fixed})",
            e["ours"],
            "rel L2",
            e["gptq-fixed"],
            target="ratio <= 1.05",
        ),
        Case(
            "ours gptq vs reference gptq loop error",
            e["ours"],
            "rel L2",
            e["reference"],
            target="ratio <= 1.05",
        ),
        # The pre-#15 case ("4-bit GPTQ g128 layer error: ours vs ORT MatMulNBitsQuantizer"), renamed to say
        # what it compares; its target is kept as it was set.
        Case(
            f"ours gptq vs ort gptq error as shipped (= its RTN), g{group}",
            e["ours"],
            "rel L2",
            e["gptq"],
            target="ratio <= 1.05",
        ),
        Case("4-bit GPTQ time: ours vs ORT", t_ours, "s", baseline=t_ort),
    ]


def event2vec_time_cases(seed: int = 0) -> list[Case]:
    """Max |Δlogit| when every timestamp of a window changes (fresh model per time mode, d 32, 2 layers),
    and the same for an old "add" file (t on every channel, v = 1) that the pre-norm encoder cannot see."""
    from models.event2vec import TIME_MODES, Event2Vec

    g = torch.Generator().manual_seed(seed)
    n = 256
    xy = torch.randint(0, 64, (8, n, 2), generator=g).float()
    p = torch.randint(0, 2, (8, n, 1), generator=g).float()
    t1 = torch.sort(torch.rand(8, n, 1, generator=g), 1).values
    t2 = torch.sort(torch.rand(8, n, 1, generator=g), 1).values
    a, b = torch.cat([xy, t1, p], -1), torch.cat([xy, t2, p], -1)
    cases = []
    for mode, legacy in [*((m, False) for m in TIME_MODES), ("add", True)]:
        torch.manual_seed(seed)
        net = Event2Vec(64, 64, 8, dim=32, ffn=64, time_mode=mode, seq_conv=0).eval()
        if legacy and net.embed.time_add is not None:
            with torch.no_grad():
                net.embed.time_add.weight.fill_(1.0)
        with torch.no_grad():
            moved = float((net(a) - net(b)).abs().max())
        if legacy:
            cases.append(
                Case("event2vec logits moved by timestamps, a pre-#15 'add' file (v = 1)", moved, "logit")
            )
        else:
            name = f"event2vec logits change when timestamps change, time_mode={mode}"
            cases.append(Case(name, moved, "logit", target="value > 0.001"))
    return cases


def make_session_from_proto(model: object) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]


def int8_latency(sizes: list[int], batch: int, reps: int) -> list[Case]:
    """fp32 vs int8 (static QDQ, dynamic) vs 4-bit MatMulNBits latency of an MLP, 1 thread [SCIENCE 4.5]."""
    torch.manual_seed(0)
    mlp = MLP(sizes).eval()
    x = torch.randn(batch, sizes[0])
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = Path(tmp)
        export_onnx(mlp, d / "fp32.onnx", x[:1])
        calib = [{"x": torch.randn(batch, sizes[0]).numpy()} for _ in range(4)]
        quantize_int8_static(d / "fp32.onnx", d / "qdq.onnx", calib)
        quantize_int8_dynamic(d / "fp32.onnx", d / "dyn.onnx")
        q = copy.deepcopy(mlp)
        res = quantize_model(q, torch.randn(256, sizes[0]), QuantConfig("rtn", QuantSpec(4, 128)))
        gemm_to_nbits(d / "fp32.onnx", res.layers, d / "w4.onnx")
        feed = {"x": x.numpy()}
        sessions = {k: make_session(d / f"{k}.onnx", 1) for k in ("fp32", "qdq", "dyn", "w4")}
        # Rounds of a few runs of each model in turn; a speed-up is the median over rounds of the
        # per-round ratio, so a change in the machine's load hits fp32 and int8 alike.
        rounds: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(max(3, reps // 5)):
            for k, sess in sessions.items():
                rounds[k].append(median_us(lambda s=sess: s.run(None, feed), 5) / 1e3)
    speedup = {k: float(np.median(np.asarray(rounds["fp32"]) / np.asarray(v))) for k, v in rounds.items()}
    shape = "-".join(map(str, sizes))
    vnni = "VNNI" if cpu_has_vnni() else "no VNNI: reduce_range"
    flags = " ".join(cpu_flags()) or "flags unknown"
    # The target (≥ 2× where the CPU has VNNI) is kept as is on any CPU: the flags say which case
    # this is. value = ratio = the speed-up.
    return [
        Case(f"ORT fp32 MLP {shape} batch {batch}", float(np.median(rounds["fp32"])), "ms"),
        Case(
            f"ort static int8 vs fp32, batch {batch} (QDQ S8S8, {vnni}; CPU flags: {flags})",
            speedup["qdq"],
            "x",
            ratio=speedup["qdq"],
            target="value >= 2",
        ),
        Case("ORT int8 dynamic speedup", speedup["dyn"], "x"),
        Case("ORT 4-bit MatMulNBits speedup", speedup["w4"], "x"),
    ]


def run(argv: list[str]) -> list[Case]:
    p = argparse.ArgumentParser(prog="edgeloop bench quant")
    p.add_argument("--quick", action="store_true", help="small sizes, one seed (< 30 s)")
    args = p.parse_args(argv)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # Held-out seeds 0, 1, 2 (TesseraQ defaults were chosen on seeds 100 and 101). ORT's K / 128 must be
        # even (ORT 1.32 packs zero points across rows otherwise), hence hidden 256.
        if args.quick:
            cases = error_table((2, 3, 4), (0,), 64, 256, 1000, 10)
            cases += reference_loop_cases(0, hidden=64, n_cal=256)
            cases += ort_gptq_cases(256, 256, 512)
            cases += event2vec_time_cases()
            cases += int8_latency([256, 512, 512, 10], 64, 10)
        else:
            cases = error_table((2, 3, 4, 8), (0, 1, 2), 256, 512, 5000, 60)
            cases += reference_loop_cases(0)
            cases += ort_gptq_cases(256, 512, 2000)
            cases += event2vec_time_cases()
            cases += int8_latency([512, 2048, 2048, 2048, 10], 64, 50)
    finally:
        torch.set_num_threads(n)
    return cases
