"""The `window` node: fixed-size windows with a hop over any stream of arrays or numbers."""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field, model_validator

from runtime.errors import NodeError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["Window"]


class Window(Node):
    """Collect samples into windows of `size`, emitting one every `hop` samples once full.

    Each message on `x` is one sample (a number or an array of any fixed shape), or with
    `batched: true` several samples stacked along axis 0 (e.g. an IMU chunk). Each window is an
    array (size, *sample_shape); its `t_sense` is that of the message holding the window's last
    sample. `hop` defaults to `size` (no overlap).
    """

    inputs = ("x",)
    outputs = ("window",)

    class Params(NodeParams):
        size: int = Field(gt=0)
        hop: int | None = Field(None, gt=0)
        batched: bool = False

        @model_validator(mode="after")
        def _default_hop(self) -> Self:
            if self.hop is None:
                self.hop = self.size
            return self

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.size, self.hop = int(ctx.params.size), int(ctx.params.hop)
        self.buf: np.ndarray | None = None  # samples from index `base` on
        self.base = 0  # index of buf[0] in the whole stream
        self.total = 0  # samples received
        self.next_end = self.size  # stream index one past the next window's last sample

    async def on_input(self, port: str, msg: Message) -> None:
        try:
            x = np.asarray(msg.payload)
            if x.dtype == object or x.dtype.kind not in "biuf":
                raise TypeError(f"a {type(msg.payload).__name__}")
            new = x if self.ctx.params.batched else x[None]
            if self.ctx.params.batched and x.ndim == 0:
                raise TypeError("a scalar, but batched=true expects samples stacked on axis 0")
            if self.buf is not None and new.shape[1:] != self.buf.shape[1:]:
                raise TypeError(f"shape {new.shape[1:]} after samples of shape {self.buf.shape[1:]}")
        except TypeError as exc:
            raise NodeError(
                f"node '{self.ctx.node_id}', input 'x': expected numeric samples, got {exc}"
            ) from None
        self.buf = new.copy() if self.buf is None else np.concatenate([self.buf, new])
        self.total += len(new)
        while self.next_end <= self.total:
            start = self.next_end - self.size - self.base
            await self.ctx.emit("window", self.buf[start : start + self.size].copy(), t_sense=msg)
            self.next_end += self.hop
        # Keep only what the next window needs.
        keep_from = max(0, self.next_end - self.size - self.base)
        if keep_from:
            self.buf = self.buf[keep_from:]
            self.base += keep_from
