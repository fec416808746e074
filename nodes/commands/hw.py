"""`edgeloop hw report MODEL --backend rram|loas|ideal`: per-layer hardware cost table and energy chart."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runtime.errors import HardwareError
from sim_hw.cost import CostReport
from sim_hw.errors import BackendConfigError, HardwareStateError
from sim_hw.registry import make_backend, parse_backend_spec
from sim_hw.report import plot_energy_breakdown, summary

__all__ = ["register", "handler", "hw_report", "load_report_model", "DEMOS"]

#: built-in models so `hw report` works from a fresh clone: name → (description, default input shape)
DEMOS: dict[str, tuple[str, tuple[int, ...]]] = {
    "demo-mlp": ("MLP 256-128-10 with ReLU", (256,)),
    "demo-snn": ("spiking MLP 256-128-10 (LIF), T=4 rate-coded spikes", (256,)),
    "demo-cnn": ("spiking conv net 2×32×32 → (8, 16) channels → 4 classes, T=4", (2, 32, 32)),
}


def _demo(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "demo-mlp":
        return nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    from models.snn import SpikingConvNet, SpikingMLP

    if name == "demo-snn":
        return SpikingMLP([256, 128, 10])
    return SpikingConvNet(2, 4, input_size=(32, 32), channels=(8, 16))


def _is_snn(model: nn.Module) -> bool:
    return hasattr(model, "spiking_layers")


def _mlp_from_state_dict(sd: dict[str, Any]) -> nn.Module:
    """A raw state dict of Linear layers (2-D weights, in order) → Sequential(Linear, ReLU, …)."""
    weights = [(k[: -len(".weight")], v) for k, v in sd.items() if k.endswith(".weight") and v.dim() == 2]
    if not weights:
        raise HardwareError("model file: no 'arch' and no 2-D '*.weight' tensors to rebuild an MLP from")
    layers: list[nn.Module] = []
    for i, (prefix, w) in enumerate(weights):
        lin = nn.Linear(w.shape[1], w.shape[0], bias=f"{prefix}.bias" in sd)
        lin.weight.data.copy_(w)
        if lin.bias is not None:
            lin.bias.data.copy_(sd[f"{prefix}.bias"])
        layers += [lin] + ([nn.ReLU()] if i < len(weights) - 1 else [])
    return nn.Sequential(*layers)


def load_report_model(spec: str) -> tuple[nn.Module, tuple[int, ...] | None]:
    """A demo name or a model file (`models.io` format, or a raw Linear state dict) → (model, input shape)."""
    if spec in DEMOS:
        return _demo(spec), DEMOS[spec][1]
    path = Path(spec)
    if not path.is_file():
        raise HardwareError(f"model {spec!r}: not a file and not a demo ({', '.join(DEMOS)})")
    blob = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle objects
    if isinstance(blob, dict) and "arch" in blob:
        from models.io import load_checkpoint

        ckpt = load_checkpoint(path)
        arch = ckpt.arch
        shape: tuple[int, ...] | None = None
        if "sizes" in arch:
            shape = (int(arch["sizes"][0]),)
        elif "input_size" in arch and "in_channels" in arch:
            size = arch["input_size"]
            dims = int(arch.get("dims", 2))
            size = [int(size)] * dims if isinstance(size, int) else [int(s) for s in size]
            if len(size) == 1 and dims == 2:
                size = size * 2
            shape = (int(arch["in_channels"]), *size)
        return ckpt.model.eval(), shape
    if isinstance(blob, dict):
        sd = blob.get("state_dict", blob)
        model = _mlp_from_state_dict(sd)
        first = next(m for m in model.modules() if isinstance(m, nn.Linear))
        return model, (first.in_features,)
    raise HardwareError(f"model file {spec!r}: expected a dict (models.io file or state dict)")


def _example_input(
    model: nn.Module, shape: tuple[int, ...], batch: int, timesteps: int, rate: float
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if _is_snn(model):
        return (torch.rand((timesteps, batch, *shape), generator=gen) < rate).float()
    return torch.relu(torch.randn((batch, *shape), generator=gen))


def hw_report(model: nn.Module, backend: str | dict[str, Any], x: torch.Tensor) -> CostReport:
    """Map `model` onto `backend` (a spec: "rram", "rram:adc_bits=6", {"kind": ...}) and cost one pass on x."""
    kind, params = parse_backend_spec(backend)
    hw = make_backend(kind, **params).prepare(model)
    _, cost = hw.run(x)
    return cost


def handler(args: argparse.Namespace) -> int:
    params = {}
    for item in args.param:
        key, eq, value = item.partition("=")
        if not eq:
            raise HardwareError(f"--param {item!r}: write it as key=value")
        params[key.strip()] = value.strip()
    try:
        model, shape = load_report_model(args.model)
        if args.input_shape:
            shape = tuple(int(s) for s in args.input_shape.replace("x", ",").split(",") if s)
        if shape is None:
            raise HardwareError(f"model {args.model!r}: give --input-shape (e.g. 2,32,32)")
        backend: dict[str, Any] = {"kind": args.backend, **params}
        if args.backend == "loas" and "timesteps" not in params:
            backend["timesteps"] = args.timesteps
        x = _example_input(model, shape, args.batch, args.timesteps, args.rate)
        cost = hw_report(model, backend, x)
    except (BackendConfigError, HardwareStateError) as exc:
        raise HardwareError(str(exc)) from exc
    print(cost.table(title=f"{args.model} on {args.backend}"))
    print(summary(cost))
    png = Path(args.png or f"out/hw-report-{Path(args.model).stem}-{args.backend}.png")
    plot_energy_breakdown(cost, png)
    print(f"wrote {png}")
    if args.json:
        Path(args.json).write_text(json.dumps(cost.to_dict(), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hw = subparsers.add_parser("hw", help="emulated hardware: cost reports for a model on rram/loas/ideal")
    sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND", required=True)
    sp = sub.add_parser("report", help="per-layer energy/latency/area table and an energy-breakdown PNG")
    sp.add_argument("model", help=f"model file (.pt from models.io) or a demo: {', '.join(DEMOS)}")
    sp.add_argument("--backend", choices=("rram", "loas", "ideal"), default="rram")
    sp.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="backend parameter (repeatable), e.g. --param adc_bits=6",
    )
    sp.add_argument("--input-shape", help="one sample's shape without batch/time, e.g. 256 or 2,32,32")
    sp.add_argument("--batch", type=int, default=8, help="samples in the example batch (default 8)")
    sp.add_argument("--timesteps", type=int, default=4, help="SNN timesteps T (default 4)")
    sp.add_argument("--rate", type=float, default=0.2, help="spike probability of the example SNN input")
    sp.add_argument("--png", help="chart path (default out/hw-report-MODEL-BACKEND.png)")
    sp.add_argument("--json", help="also write the report as JSON")
    sp.set_defaults(func=handler)
