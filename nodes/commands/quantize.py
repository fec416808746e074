"""`edgeloop quantize MODEL --method gptaq --bits 4 --calib DATA -o OUT`: weight quantization of a model file."""

from __future__ import annotations

import argparse
import copy
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from models.io import Checkpoint, ModelFileError, load_checkpoint, save_model
from models.onnx_export import export_onnx, export_snn_step
from models.quant import (
    INITS,
    METHODS,
    QuantConfig,
    QuantError,
    QuantSpec,
    TesseraQConfig,
    auto_blocks,
    quantizable_layers,
    quantize_model,
)
from models.quant.nbits import gemm_to_nbits
from models.snn import SpikingNet
from models.train import logits_of
from nodes.sensors.imu import labelled_windows
from runtime.errors import EdgeloopError, GraphError, RecordingError

from .train import load_har_folder

__all__ = ["register", "handler", "calibration_inputs", "quantize_file"]


def calibration_inputs(ck: Checkpoint, calib: str, limit: int) -> Tensor:
    """Raw samples [N, ...] for the model: a .npy/.npz array (npz: key 'x' or the first array), or for a HAR
    model a folder of IMU CSVs (windows as in training) or 'synthetic' (two synthetic subjects)."""
    p = Path(calib)
    if calib == "synthetic" or p.is_dir():
        if "har_input" not in ck.meta:
            raise GraphError(
                f"--calib {calib}: CSV folders and 'synthetic' need a HAR model (meta 'har_input')"
            )
        size = int(ck.meta["har_input"]["size"])
        with tempfile.TemporaryDirectory() as tmp:
            if calib == "synthetic":
                from nodes.sensors.imu.synthetic import write_synthetic_dataset

                write_synthetic_dataset(tmp, n_subjects=2, minutes_per_subject=2.0, seed=123)
                p = Path(tmp)
            recs, _, _ = load_har_folder(p, float(ck.meta.get("rate_hz", 50.0)))
            x, _ = labelled_windows(recs, size, int(ck.meta.get("hop", size // 2)))
    elif p.suffix == ".npy":
        x = np.load(p, allow_pickle=False)
    elif p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            x = z["x"] if "x" in z.files else z[z.files[0]]
    else:
        raise RecordingError(
            f"--calib {calib}: give a .npy/.npz array of input samples, a CSV folder, or 'synthetic'"
        )
    if len(x) == 0:
        raise RecordingError(f"--calib {calib}: no calibration samples")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.permutation(len(x))[:limit])
    return torch.as_tensor(np.asarray(x)[idx], dtype=torch.float32)


def _encoder(ck: Checkpoint) -> Any:
    """Raw batch [B, ...] → model input (SNNs: [T, B, ...] by the model's meta; others: unchanged)."""
    if not isinstance(ck.model, SpikingNet):
        return lambda b: b
    if "har_input" in ck.meta:
        from models.adapt.har import HarInput

        return HarInput.from_meta(ck.meta)
    from models.snn import Encoder

    enc = Encoder.from_dict(ck.meta.get("encoder", {"kind": "direct", "timesteps": 8}))
    gen = torch.Generator().manual_seed(0)
    return lambda b: enc(b, gen)


@torch.no_grad()
def _rel_error(model: nn.Module, ref: nn.Module, batches: list[Tensor]) -> float:
    num = den = 0.0
    for b in batches:
        y, r = logits_of(model(b)), logits_of(ref(b))
        num += float((y - r).pow(2).sum())
        den += float(r.pow(2).sum())
    return float((num / max(den, 1e-30)) ** 0.5)


def quantize_file(
    model_path: str,
    calib: str,
    out: str,
    method: str = "gptaq",
    bits: int = 4,
    group_size: int | None = None,
    act_order: bool = False,
    alpha: float = 0.25,
    damp: float = 0.01,
    samples: int = 512,
    batch: int = 64,
    skip: tuple[str, ...] = (),
    progress: bool = True,
    tesseraq_alpha: float = 1.0,
    blocks: tuple[str, ...] | str = "auto",
    static_groups: bool = False,
    tesseraq: TesseraQConfig | None = None,
) -> dict[str, Any]:
    """Quantize a model file's Linear/Conv weights; write a model file (.pt) or an ONNX file (.onnx, with
    MatMulNBits for 2/4/8-bit Linear layers). Returns a summary (layers, held-out relative logit error)."""
    ck = load_checkpoint(model_path)
    x = calibration_inputs(ck, calib, samples + samples // 4)
    n_hold = max(1, len(x) // 5) if len(x) > 4 else 0
    enc = _encoder(ck)
    cal = [enc(x[n_hold:][i : i + batch]) for i in range(0, len(x) - n_hold, batch)]
    held = [enc(x[:n_hold][i : i + batch]) for i in range(0, n_hold, batch)]
    ref = copy.deepcopy(ck.model)
    cfg = QuantConfig(
        method,
        QuantSpec(bits, group_size),
        damp=damp,
        act_order=act_order,
        alpha=alpha,
        static_groups=static_groups or (act_order and group_size is not None),
        skip=skip,
        tesseraq=replace(tesseraq or TesseraQConfig(), target_alpha=tesseraq_alpha),
        blocks=blocks,
    )
    if blocks == "auto":
        blocks = auto_blocks(ck.model, quantizable_layers(ck.model, skip)) if method == "tesseraq" else ()
    res = quantize_model(ck.model, cal, cfg, progress=progress)
    err = _rel_error(ck.model, ref, held) if held else float("nan")
    meta = {
        **ck.meta,
        "quant": {
            "method": method,
            "bits": bits,
            "group_size": group_size,
            "alpha": alpha,
            "blocks": list(blocks),
            "calib": str(calib),
            "calib_samples": len(x) - n_hold,
            "heldout_rel_logit_error": err,
        },
    }
    outp = Path(out)
    if outp.suffix == ".onnx":
        sample = x[:1] if not isinstance(ck.model, SpikingNet) else enc(x[:1])[0]
        if isinstance(ck.model, SpikingNet):
            export_snn_step(ck.model, outp, sample)
        else:
            export_onnx(ck.model, outp, sample)
        done = gemm_to_nbits(outp, res.layers, outp) if bits in (2, 4, 8) else []
        print(
            f"ONNX: {len(done)} Linear layer(s) as MatMulNBits ({', '.join(done) or 'none'}); "
            "other layers carry the dequantized weights in fp32"
        )
    else:
        save_model(ck.model, outp, meta, quant=res.to_dict())
    return {
        "layers": list(res.layers),
        "heldout_rel_logit_error": err,
        "out": str(outp),
        "layer_loss": {k: v.loss for k, v in res.layers.items()},
    }


def handler(args: argparse.Namespace) -> int:
    try:
        out = _quantize_from_args(args)
    except (QuantError, ModelFileError) as exc:  # models/ does not depend on runtime: say it as the CLI does
        raise EdgeloopError(str(exc)) from exc
    print(
        f"{args.method} W{args.bits}: {len(out['layers'])} layers; held-out relative logit error "
        f"{out['heldout_rel_logit_error']:.4f}"
    )
    print(f"saved {out['out']}")
    return 0


def _quantize_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return quantize_file(
        args.model,
        args.calib,
        args.output,
        args.method,
        args.bits,
        args.group_size,
        args.act_order,
        args.alpha,
        args.damp,
        args.samples,
        skip=tuple(args.skip),
        progress=not args.quiet,
        tesseraq_alpha=args.tesseraq_alpha,
        blocks="auto"
        if args.blocks == "auto"
        else tuple(b for b in args.blocks.split(",") if b and b != "none"),
        static_groups=args.static_groups,
        tesseraq=TesseraQConfig(
            steps_per_round=args.tesseraq_steps,
            batch_size=args.tesseraq_batch_size or None,
            init=args.tesseraq_init,
        ),
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sp = subparsers.add_parser("quantize", help="quantize a model's weights (RTN, GPTQ, GPTAQ, TesseraQ)")
    sp.add_argument("model", help="model file (.pt saved by models.io / edgeloop train)")
    sp.add_argument("--method", choices=METHODS, default="gptaq")
    sp.add_argument("--bits", type=int, default=4, help="weight bits, 2 to 8 (default 4)")
    sp.add_argument(
        "--group-size", type=int, help="columns per (scale, zero) group (default: one per output row)"
    )
    sp.add_argument(
        "--act-order", action="store_true", help="GPTQ/GPTAQ: quantize columns by descending H_jj"
    )
    sp.add_argument(
        "--alpha", type=float, default=0.25, help="GPTAQ asymmetry weight α (0 = GPTQ; default 0.25)"
    )
    sp.add_argument(
        "--tesseraq-alpha",
        type=float,
        default=1.0,
        help="TesseraQ target: 1 = float layer on float inputs (paper), 0 = own output on quantized inputs "
        "(better for spiking nets here)",
    )
    sp.add_argument(
        "--blocks",
        metavar="NAMES",
        default="auto",
        help="TesseraQ: comma-separated modules whose layers are reconstructed together on the module's "
        "output (the paper's block reconstruction, e.g. 'net' for a whole MLP; stateless modules only); "
        "'auto' (default) picks a model's blocks, 'none' goes layer by layer",
    )
    sp.add_argument(
        "--tesseraq-steps", type=int, default=60, help="TesseraQ: Adam steps per PAR round (default 60)"
    )
    sp.add_argument(
        "--tesseraq-batch-size",
        type=int,
        default=64,
        help="TesseraQ block reconstruction: random rows per step (default 64; 0 = all rows every step)",
    )
    sp.add_argument(
        "--tesseraq-init",
        choices=INITS,
        default="awq-clip",
        help="TesseraQ starting scales: awq-clip (AWQ's clipping search, default) or minmax",
    )
    sp.add_argument(
        "--static-groups",
        action="store_true",
        help="GPTQ/GPTAQ: fit every group's scale before any update (implied by --act-order with groups)",
    )
    sp.add_argument(
        "--damp", type=float, default=0.01, help="Hessian damping, fraction of mean diag (default 0.01)"
    )
    sp.add_argument(
        "--calib",
        required=True,
        help="calibration samples: .npy/.npz array [N, ...], an IMU CSV folder or 'synthetic' (HAR)",
    )
    sp.add_argument("--samples", type=int, default=512, help="calibration samples to use (default 512)")
    sp.add_argument("--skip", action="append", default=[], metavar="LAYER", help="keep this layer in float")
    sp.add_argument("--output", "-o", required=True, help="output: .pt model file, or .onnx (MatMulNBits)")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=handler)
