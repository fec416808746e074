"""Representation nodes: event batches in, event frames / voxel grids / time surfaces / event2vec tokens out."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from nodes.sensors.events import (
    EVENT_DTYPE,
    TimeSurface,
    concat_records,
    event_frame,
    event_tokens,
    voxel_grid,
)
from runtime.errors import NodeError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["EventFrame", "VoxelGrid", "TimeSurfaceNode", "EventTokens"]


class _Repr(Node):
    """Shared input handling: `events` carries the batch dict of the event-camera sources."""

    inputs = ("events",)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx

    def unpack(self, msg: Message) -> tuple[np.ndarray, int, int, dict[str, Any]]:
        b = msg.payload
        if not isinstance(b, dict) or "events" not in b or "width" not in b or "height" not in b:
            raise NodeError(
                f"node '{self.ctx.node_id}', input 'events': expected an event batch "
                "{events, width, height, t0_us, t1_us} from event_camera.*, got "
                f"{type(b).__name__}"
            )
        ev = b["events"]
        if not isinstance(ev, np.ndarray) or ev.dtype != EVENT_DTYPE:
            raise NodeError(f"node '{self.ctx.node_id}', input 'events': events must be an EVENT_DTYPE array")
        return ev, int(b["width"]), int(b["height"]), b

    async def on_input(self, port: str, msg: Message) -> None:
        ev, w, h, batch = self.unpack(msg)
        try:
            out = self.compute(ev, w, h, batch)
        except ValueError as exc:
            raise NodeError(f"node '{self.ctx.node_id}': {exc}") from exc
        await self.ctx.emit(self.outputs[0], out, t_sense=msg)

    def compute(self, ev: np.ndarray, w: int, h: int, batch: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError


class EventFrame(_Repr):
    """`frame`: int32 (2, H, W) counts per polarity (`mode: count`) or (H, W) ON − OFF (`mode: polarity`)."""

    outputs = ("frame",)

    class Params(NodeParams):
        mode: Literal["count", "polarity"] = "count"

    def compute(self, ev: np.ndarray, w: int, h: int, batch: dict[str, Any]) -> np.ndarray:
        return event_frame(ev, w, h, self.ctx.params.mode)


class VoxelGrid(_Repr):
    """`voxels`: float32 (bins, H, W), bilinear in time over each batch (tonic's ToVoxelGrid)."""

    outputs = ("voxels",)

    class Params(NodeParams):
        bins: int = Field(5, gt=0)

    def compute(self, ev: np.ndarray, w: int, h: int, batch: dict[str, Any]) -> np.ndarray:
        return voxel_grid(ev, self.ctx.params.bins, w, h)


class TimeSurfaceNode(_Repr):
    """`surface`: float32 (2, H, W) exp(−(t1 − t_last)/τ), remembering pixels across batches, taken at
    each batch's end t1_us."""

    outputs = ("surface",)

    class Params(NodeParams):
        tau_us: float = Field(50_000.0, gt=0)

    def compute(self, ev: np.ndarray, w: int, h: int, batch: dict[str, Any]) -> np.ndarray:
        ts = getattr(self, "_ts", None)
        if ts is None or (ts.width, ts.height) != (w, h):
            ts = self._ts = TimeSurface(w, h, self.ctx.params.tau_us)
        ts.update(ev)
        t1 = batch.get("t1_us")
        return ts.surface(None if t1 is None else int(t1))


class EventTokens(_Repr):
    """`tokens`: float32 (n, 4) rows (x, y, t_norm, p) for event2vec.

    `mode: sample` draws n events from each batch; `mode: window` uses the n most recent events,
    carried across batches (the sliding event window event2vec re-embeds; SCIENCE.md 2.5).
    """

    outputs = ("tokens",)

    class Params(NodeParams):
        n: int = Field(1024, gt=0)
        mode: Literal["sample", "window"] = "sample"
        seed: int | None = 0

    async def setup(self, ctx: Context) -> None:
        await super().setup(ctx)
        self.rng = np.random.default_rng(ctx.params.seed)
        self.recent = np.zeros(0, EVENT_DTYPE)

    def compute(self, ev: np.ndarray, w: int, h: int, batch: dict[str, Any]) -> np.ndarray:
        p = self.ctx.params
        if p.mode == "sample":
            return event_tokens(ev, p.n, "sample", self.rng)
        self.recent = concat_records([self.recent, ev])[-p.n :]
        return event_tokens(self.recent, p.n, "window")
