"""ONNX export: plain models and one-step spiking networks with the membrane state as explicit I/O."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from .snn.lif import LIFState
from .snn.networks import SpikingNet

__all__ = ["export_onnx", "export_snn_step", "SnnStepSpec", "read_snn_step_spec", "SNN_STEP_KIND"]

SNN_STEP_KIND = "snn_step"


def _export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: str | Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_batch: bool,
    opset: int,
) -> None:
    axes = {n: {0: "batch"} for n in input_names + output_names} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter (dynamo=False) gives small, exact graphs for these nets [SCIENCE 4.6];
        # it warns that it is deprecated, which is not actionable here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )


def export_onnx(
    model: nn.Module, path: str | Path, sample: Tensor, dynamic_batch: bool = True, opset: int = 17
) -> Path:
    """Export a feed-forward model (input 'x' → output 'y'); the batch axis stays dynamic."""
    was = model.training
    model.eval()
    try:
        _export(model, (sample,), path, ["x"], ["y"], dynamic_batch, opset)
    finally:
        model.train(was)
    return Path(path)


class _OneStep(nn.Module):
    def __init__(self, net: SpikingNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, *v: Tensor) -> tuple[Tensor, ...]:
        r = self.net.step(x, tuple(LIFState(t) for t in v))
        return (r.readout, *r.spikes, *(s.v for s in r.state))


@dataclass(frozen=True)
class SnnStepSpec:
    """Names and shapes of a one-step SNN graph: (x_t, v_in...) → (readout_t, spikes..., v_out...).

    The caller keeps the membranes: feed `v_out[i]` back as `v_in[i]` next step, starting from zeros of
    `state_shapes[i]` (batch axis first). logits = mean over steps of readout_t, as `SpikingNet.forward`.
    """

    input: str
    state_inputs: tuple[str, ...]
    readout: str
    spikes: tuple[str, ...]
    state_outputs: tuple[str, ...]
    state_shapes: tuple[tuple[int, ...], ...]


def export_snn_step(net: SpikingNet, path: str | Path, sample_step: Tensor, opset: int = 17) -> SnnStepSpec:
    """Export one time step of `net`; `sample_step` is one step's input [B, ...] (B stays dynamic).

    The spec is also stored in the ONNX metadata (`edgeloop.kind` = "snn_step", `edgeloop.spec`),
    so `read_snn_step_spec` and the `onnx.infer` node recognise the file.
    """
    shapes = net.state_shapes(tuple(sample_step.shape))
    n = len(shapes)
    spec = SnnStepSpec(
        "x",
        tuple(f"v{i}" for i in range(n)),
        "readout",
        tuple(f"spikes{i}" for i in range(n)),
        tuple(f"v{i}_out" for i in range(n)),
        tuple((1, *s[1:]) for s in shapes),
    )
    was = net.training
    net.eval()
    try:
        zeros = tuple(torch.zeros(s, dtype=sample_step.dtype) for s in shapes)
        _export(
            _OneStep(net),
            (sample_step, *zeros),
            path,
            [spec.input, *spec.state_inputs],
            [spec.readout, *spec.spikes, *spec.state_outputs],
            True,
            opset,
        )
    finally:
        net.train(was)
    m = onnx.load(str(path))
    meta = {
        "edgeloop.kind": SNN_STEP_KIND,
        "edgeloop.spec": json.dumps(spec.__dict__),
        "edgeloop.arch": json.dumps(net.arch),
    }
    for k, val in meta.items():
        m.metadata_props.add(key=k, value=val)
    onnx.save(m, str(path))
    return spec


def read_snn_step_spec(
    model: onnx.ModelProto | Sequence[tuple[str, str]] | dict[str, str],
) -> SnnStepSpec | None:
    """The step spec stored by `export_snn_step` (from an ONNX model or its metadata map), or None."""
    if isinstance(model, onnx.ModelProto):
        meta = {p.key: p.value for p in model.metadata_props}
    else:
        meta = dict(model)
    if meta.get("edgeloop.kind") != SNN_STEP_KIND:
        return None
    d = json.loads(meta["edgeloop.spec"])
    return SnnStepSpec(
        d["input"],
        tuple(d["state_inputs"]),
        d["readout"],
        tuple(d["spikes"]),
        tuple(d["state_outputs"]),
        tuple(tuple(s) for s in d["state_shapes"]),
    )
