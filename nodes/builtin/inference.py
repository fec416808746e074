"""Inference nodes: `snn.classifier` (a spiking network on an emulated hardware backend) and `onnx.infer`.

`snn.classifier` emits logits, the `pred` payload of `adapt.*`, spike counts and the backend's cost;
`onnx.infer` runs an onnxruntime CPU session (one-step SNN files keep their membranes between steps).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from pydantic import Field

from models.adapt.har import HarInput
from models.io import Checkpoint, load_checkpoint
from models.onnx_export import read_snn_step_spec
from models.quant.ort import make_session
from models.snn import Encoder, SNNOutput
from nodes.builtin._params import param_errors
from nodes.builtin._prediction import prediction
from nodes.pretrained.named import is_pretrained, pretrained_path
from runtime.errors import GraphError, HardwareError, NodeError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams
from sim_hw import BackendConfigError, CostReport, make_backend, resolve_backend_spec

__all__ = ["SnnClassifier", "OnnxInfer"]


def _sample_encoder(ck: Checkpoint, timesteps: int | None = None) -> Callable[[np.ndarray], torch.Tensor]:
    """How one incoming sample becomes the network's [T, 1, ...] input, from the model file's meta.

    A HAR model ("har_input" meta: window [size, 6] standardised, channels first) or any model with an
    "encoder" meta (the sample as the model's per-step input shape). `timesteps` overrides T.
    """
    if "har_input" in ck.meta:
        prep = HarInput.from_meta(ck.meta)
        if timesteps:
            prep = HarInput(prep.mean, prep.std, prep.size, Encoder(prep.encoder.kind, timesteps))
        return prep
    enc = Encoder.from_dict(ck.meta.get("encoder", {"kind": "direct", "timesteps": 8}))
    if timesteps:
        enc = Encoder(enc.kind, timesteps, enc.gain)
    # a copy: received arrays are read-only views, which torch warns about
    return lambda x: enc(torch.tensor(np.asarray(x), dtype=torch.float32).unsqueeze(0))


class SnnClassifier(Node):
    """`x` (one sample, e.g. an IMU window [size, 6] or an event frame [2, H, W]) → `logits` [C] float32,
    `pred` {class, label, confidence}, `spikes` (spike count per spiking layer, float32 [L]) and `cost`
    (the backend's CostReport for this sample, as a dict)."""

    inputs = ("x",)
    outputs = ("logits", "pred", "spikes", "cost")
    file_params = ("model",)

    class Params(NodeParams):
        model: str = Field(
            description="model file saved with models.io.save_model (e.g. `edgeloop train har`), or "
            "`pretrained:NAME` (e.g. `pretrained:gestures`): trained on first use, cached in `cache_dir`"
        )
        cache_dir: str = Field("out/pretrained", description="where `pretrained:NAME` models are cached")
        backend: str | dict[str, Any] = Field(
            "ideal", description='"ideal", "rram:adc_bits=6", {"kind": "loas"}'
        )
        timesteps: int | None = Field(None, ge=1, description="override the model's encoder timesteps")
        torch_threads: int | None = Field(1, ge=1)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        if p.torch_threads:
            torch.set_num_threads(p.torch_threads)
        with param_errors(ctx, "backend", catch=BackendConfigError):
            kind, hw_params = resolve_backend_spec(p.backend, ctx.backend_override)
            self.backend = make_backend(kind, **hw_params)
        with param_errors(ctx, "model"):  # ModelFileError and unknown pretrained names are ValueErrors
            path = p.model
            if is_pretrained(path):
                ctx.log.info("model %s: from %s (trained there on first use, in seconds)", path, p.cache_dir)
                path = str(await asyncio.to_thread(pretrained_path, path, p.cache_dir))
            ck = await asyncio.to_thread(load_checkpoint, path)
        self.names = [str(n) for n in ck.meta.get("label_names") or []]
        self.encode = _sample_encoder(ck, p.timesteps)
        try:
            self.hw = self.backend.prepare(ck.model)
        except BackendConfigError as exc:
            raise HardwareError(
                f"node '{ctx.node_id}': backend {kind!r} cannot run this model: {exc}"
            ) from exc

    def _infer(self, sample: np.ndarray) -> tuple[object, CostReport]:
        return self.hw.run(self.encode(sample))

    async def on_input(self, port: str, msg: Message) -> None:
        try:
            out, cost = await asyncio.to_thread(self._infer, np.asarray(msg.payload, np.float32))
        except (ValueError, RuntimeError) as exc:
            raise NodeError(
                f"node '{self.ctx.node_id}': inference on input of shape "
                f"{np.shape(msg.payload)} failed: {exc}"
            ) from exc
        if not isinstance(out, SNNOutput):
            raise NodeError(
                f"node '{self.ctx.node_id}': the model is not a spiking network (got {type(out).__name__})"
            )
        logits = out.logits[0].float()
        await self.ctx.emit("logits", logits.numpy(), t_sense=msg)
        await self.ctx.emit("pred", prediction(logits, self.names), t_sense=msg)
        await self.ctx.emit(
            "spikes", np.array([float(c.sum()) for c in out.spike_counts], np.float32), t_sense=msg
        )
        await self.ctx.emit("cost", cost.to_dict(), t_sense=msg)
        self.ctx.counter("inferences")


class OnnxInfer(Node):
    """`x` → `y` (the model's first output, float32). A sample without the batch axis gets one (and loses it
    again on the way out). For a one-step SNN file (`models.onnx_export.export_snn_step`), each `x` is one
    time step: `y` is that step's readout, `spikes` the spike count per layer, and with `reset_every` = T
    `logits` is the mean readout over T steps, after which the membranes restart at rest. Any message on
    `reset` zeroes the membranes."""

    inputs = ("x", "reset")
    outputs = ("y", "spikes", "logits")
    file_params = ("model",)

    class Params(NodeParams):
        model: str = Field(description="ONNX file (fp32, int8 QDQ, or 4-bit MatMulNBits)")
        providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
        intra_op_threads: int = Field(1, ge=1)
        reset_every: int = Field(
            0, ge=0, description="one-step SNNs: emit `logits` and reset every N steps (0: never)"
        )

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        if not Path(p.model).is_file():
            raise GraphError(f"node '{ctx.node_id}', param 'model': {p.model} does not exist")
        try:
            self.sess = make_session(p.model, p.intra_op_threads, tuple(p.providers))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own (unexported) error types
            raise GraphError(
                f"node '{ctx.node_id}', param 'model': onnxruntime cannot load {p.model}: {exc}"
            ) from exc
        self.spec = read_snn_step_spec(onnx.load(p.model, load_external_data=False))
        inp = self.sess.get_inputs()[
            0 if self.spec is None else [i.name for i in self.sess.get_inputs()].index("x")
        ]
        self.input_name, self.input_rank = inp.name, len(inp.shape)
        self.state: list[np.ndarray] | None = None
        self.total: np.ndarray | None = None
        self.steps = 0

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        feeds = {self.input_name: x}
        if self.spec is not None:
            if self.state is None or self.state[0].shape[0] != x.shape[0]:
                self.state = [np.zeros((x.shape[0], *s[1:]), np.float32) for s in self.spec.state_shapes]
            feeds.update(zip(self.spec.state_inputs, self.state, strict=True))
        outs: list[np.ndarray] = self.sess.run(None, feeds)  # onnxruntime is untyped
        return outs

    async def on_input(self, port: str, msg: Message) -> None:
        if port == "reset":
            self.state, self.total, self.steps = None, None, 0
            return
        x = np.asarray(msg.payload, np.float32)
        unbatched = x.ndim == self.input_rank - 1
        if unbatched:
            x = x[None]
        try:
            outs = await asyncio.to_thread(self._run, np.ascontiguousarray(x))
        except Exception as exc:  # noqa: BLE001
            raise NodeError(
                f"node '{self.ctx.node_id}': onnxruntime failed on input {x.shape}: {exc}"
            ) from exc
        y = outs[0][0] if unbatched else outs[0]
        await self.ctx.emit("y", np.asarray(y, np.float32), t_sense=msg)
        if self.spec is None:
            return
        n = len(self.spec.state_inputs)
        self.state = list(outs[1 + n :])
        await self.ctx.emit(
            "spikes", np.array([float(s.sum()) for s in outs[1 : 1 + n]], np.float32), t_sense=msg
        )
        self.total = outs[0] if self.total is None else self.total + outs[0]
        self.steps += 1
        if self.ctx.params.reset_every and self.steps >= self.ctx.params.reset_every:
            logits = self.total / self.steps
            await self.ctx.emit(
                "logits", np.asarray(logits[0] if unbatched else logits, np.float32), t_sense=msg
            )
            self.state, self.total, self.steps = None, None, 0
