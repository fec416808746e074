"""`snn.classifier`: a spiking network on a named hardware backend, emitting logits, spike counts and cost."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import torch
from pydantic import Field

from models.adapt.har import HarInput
from models.io import Checkpoint, ModelFileError, load_checkpoint
from models.snn import Encoder, SNNOutput
from runtime.errors import GraphError, HardwareError, NodeError
from runtime.message import Message
from runtime.node import Context, Node, Params
from sim_hw import BackendConfigError, make_backend, resolve_backend_spec

__all__ = ["SnnClassifier", "sample_encoder"]


def sample_encoder(ck: Checkpoint, timesteps: int | None = None) -> Any:
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
    return lambda x: enc(torch.as_tensor(np.asarray(x), dtype=torch.float32).unsqueeze(0))


class SnnClassifier(Node):
    """`x` (one sample, e.g. an IMU window [size, 6] or an event frame [2, H, W]) → `logits` [C] float32,
    `pred` {class, label, confidence}, `spikes` (spike count per spiking layer, float32 [L]) and `cost`
    (the backend's CostReport for this sample, as a dict)."""

    inputs = ("x",)
    outputs = ("logits", "pred", "spikes", "cost")

    class Params(Params):
        model: str = Field(
            description="model file saved with models.io.save_model (e.g. `edgeloop train har`)"
        )
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
        try:
            kind, hw_params = resolve_backend_spec(p.backend, getattr(ctx, "backend_override", None))
            self.backend = make_backend(kind, **hw_params)
        except BackendConfigError as exc:
            raise GraphError(f"node '{ctx.node_id}', param 'backend': {exc}") from exc
        try:
            ck = await asyncio.to_thread(load_checkpoint, p.model)
        except ModelFileError as exc:
            raise GraphError(f"node '{ctx.node_id}', param 'model': {exc}") from exc
        self.names = [str(n) for n in ck.meta.get("label_names") or []]
        self.encode = sample_encoder(ck, p.timesteps)
        try:
            self.hw = self.backend.prepare(ck.model)
        except BackendConfigError as exc:
            raise HardwareError(
                f"node '{ctx.node_id}': backend {kind!r} cannot run this model: {exc}"
            ) from exc

    def _infer(self, sample: np.ndarray) -> tuple[SNNOutput, Any]:
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
        k = int(logits.argmax())
        await self.ctx.emit("logits", logits.numpy(), t_sense=msg)
        await self.ctx.emit(
            "pred",
            {
                "class": k,
                "label": self.names[k] if k < len(self.names) else str(k),
                "confidence": float(torch.softmax(logits, 0)[k]),
            },
            t_sense=msg,
        )
        await self.ctx.emit(
            "spikes", np.array([float(c.sum()) for c in out.spike_counts], np.float32), t_sense=msg
        )
        await self.ctx.emit("cost", cost.to_dict(), t_sense=msg)
        self.ctx.counter("inferences")
