"""`onnx.infer`: an onnxruntime session (CPU) for exported or quantized models; one-step SNNs keep their membranes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import onnx
from pydantic import Field

from models.onnx_export import read_snn_step_spec
from models.quant.ort import make_session
from runtime.errors import GraphError, NodeError
from runtime.message import Message
from runtime.node import Context, Node, Params

__all__ = ["OnnxInfer"]


class OnnxInfer(Node):
    """`x` → `y` (the model's first output, float32). A sample without the batch axis gets one (and loses it
    again on the way out). For a one-step SNN file (`models.onnx_export.export_snn_step`), each `x` is one
    time step: `y` is that step's readout, `spikes` the spike count per layer, and with `reset_every` = T
    `logits` is the mean readout over T steps, after which the membranes restart at rest. Any message on
    `reset` zeroes the membranes."""

    inputs = ("x", "reset")
    outputs = ("y", "spikes", "logits")

    class Params(Params):
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
        return self.sess.run(None, feeds)  # type: ignore[no-any-return]

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
