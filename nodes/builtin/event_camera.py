"""Event-camera sources: replay of AEDAT4 recordings and the synthetic camera, with ROI/period control inputs."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from nodes.builtin._params import param_errors
from nodes.builtin.pacing import Pacer
from nodes.sensors.events import (
    AedatReader,
    EventBatcher,
    RecordingFormatError,
    SyntheticEventCamera,
    Target,
    Targets,
)
from runtime.errors import RecordingError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["EventCameraReplay", "SyntheticEventCameraSource", "parse_roi"]

_FRAME_TIMES = frozenset({"t", "begin_t", "end_t", "exposure_begin_t", "exposure_end_t"})


def parse_roi(payload: Any, width: int, height: int) -> tuple[int, int, int, int] | None:
    """A control payload [x0, y0, x1, y1] (half-open, pixels) or None → a clipped ROI tuple."""
    if payload is None:
        return None
    vals = [int(v) for v in np.asarray(payload).ravel().tolist()]
    if len(vals) != 4:
        raise ValueError(f"roi must be [x0, y0, x1, y1], got {payload!r}")
    x0, y0, x1, y1 = max(0, vals[0]), max(0, vals[1]), min(width, vals[2]), min(height, vals[3])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"roi {vals} is empty inside the {width}×{height} sensor")
    return x0, y0, x1, y1


def _crop(events: np.ndarray, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    if roi is None or not len(events):
        return events
    x0, y0, x1, y1 = roi
    x, y = events["x"], events["y"]
    return events[(x >= x0) & (x < x1) & (y >= y0) & (y < y1)]


class _Controlled(Node):
    """Shared control inputs: `roi` ([x0, y0, x1, y1] or None) and `period_us` (batch period)."""

    inputs: ClassVar[tuple[str, ...]] = ("roi", "period_us")
    ctx: Context
    width = height = 0
    roi: tuple[int, int, int, int] | None = None

    def set_period(self, period_us: int) -> None:
        raise NotImplementedError

    async def on_input(self, port: str, msg: Message) -> None:
        try:
            if port == "roi":
                self.roi = parse_roi(msg.payload, self.width, self.height)
            elif port == "period_us":
                if msg.payload is None or int(msg.payload) <= 0:
                    raise ValueError(f"period_us must be a positive integer, got {msg.payload!r}")
                self.set_period(int(msg.payload))
        except (TypeError, ValueError) as exc:  # a bad command must not kill the sensor
            self.ctx.log.warning("ignored control message on '%s': %s", port, exc)
            self.ctx.counter("bad_control")


class EventCameraReplay(_Controlled):
    """Replay an AEDAT4 file as event batches of `window_us` (or `count` events), paced at `speed`.

    Outputs: `events` {"events": EVENT_DTYPE array, "width", "height", "t0_us", "t1_us"} per batch;
    `imu` (IMU_DTYPE, SI units), `triggers` (TRIGGER_DTYPE) and `frames` (aedat frame dicts) when the
    file has them. With `loop`, later passes shift timestamps by the recording length so time keeps
    increasing. `t_sense` is each batch's end mapped onto the run clock.
    """

    outputs = ("events", "imu", "triggers", "frames")
    file_params = ("path",)

    class Params(NodeParams):
        path: str
        window_us: int | None = Field(10_000, gt=0)
        count: int | None = Field(None, gt=0)
        speed: float = Field(1.0, ge=0)
        loop: bool = False
        start_us: int = Field(0, ge=0)
        end_us: int | None = Field(None, gt=0)
        roi: list[int] | None = None

        @model_validator(mode="after")
        def _one_mode(self) -> Self:
            if self.count is not None:
                self.window_us = None
            if self.window_us is None and self.count is None:
                raise ValueError("give window_us (time windows) or count (events per batch)")
            return self

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        try:
            self.reader = AedatReader(p.path)
        except RecordingFormatError as exc:
            raise RecordingError(f"node '{ctx.node_id}': {exc}") from exc
        if self.reader.events_id is None:
            raise RecordingError(f"node '{ctx.node_id}': {p.path} has no events stream")
        self.width, self.height = self.reader.width, self.reader.height
        self.roi = parse_roi(p.roi, self.width, self.height) if p.roi is not None else None
        self.batcher: EventBatcher | None = None
        self.window_us, self.count = p.window_us, p.count

    def set_period(self, period_us: int) -> None:
        self.window_us, self.count = period_us, None
        if self.batcher is not None:
            self.batcher.set(window_us=period_us)

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        pacer = Pacer(ctx.clock, p.speed)
        offset = 0  # µs added to timestamps in later loop passes
        while not ctx.stop_event.is_set():
            # Paced replay decodes in small steps (~2 packets) right after each emit, so no decode
            # stalls a due batch; as fast as possible, large segments amortise per-packet overhead.
            segments = self.reader.segments(min_events=4096 if p.speed > 0 else 65_536)
            self.batcher = EventBatcher(
                segments, window_us=self.window_us, count=self.count, start_us=p.start_us, end_us=p.end_us
            )
            t_last = None
            try:
                for batch in self.batcher:
                    origin = self.batcher.origin_us or 0
                    t_sense = await pacer.wait(batch.t1_us - origin + offset - p.start_us)
                    if ctx.stop_event.is_set():
                        return
                    await self._emit(batch, offset, t_sense)
                    t_last = batch.t1_us
            except RecordingFormatError as exc:
                raise RecordingError(f"node '{ctx.node_id}': {exc}") from exc
            if not p.loop or t_last is None:
                return
            offset += t_last - (self.batcher.origin_us or 0) - p.start_us

    async def _emit(self, batch: Any, offset: int, t_sense: int) -> None:
        ev = _crop(batch.events, self.roi)
        if offset:
            ev = ev.copy()
            ev["t"] += offset
        await self.ctx.emit(
            "events",
            {
                "events": ev,
                "width": self.width,
                "height": self.height,
                "t0_us": batch.t0_us + offset,
                "t1_us": batch.t1_us + offset,
            },
            t_sense=t_sense,
        )
        for port, arr in (("imu", batch.imus), ("triggers", batch.triggers)):
            if len(arr):
                if offset:
                    arr = arr.copy()
                    arr["t"] += offset
                await self.ctx.emit(port, arr, t_sense=t_sense)
        for frame in batch.frames:
            await self.ctx.emit(
                "frames",
                {k: (v + offset if k in _FRAME_TIMES else v) for k, v in frame.items()},
                t_sense=t_sense,
            )


class SyntheticEventCameraSource(_Controlled):
    """The synthetic event camera (`nodes.sensors.events.SyntheticEventCamera`) as a source paced at `speed`.

    Outputs `events` (the batch dict of `event_camera.replay`, times from 0 µs) and `label` (the
    scene's class index at the batch's start, −1 if unlabelled) every `period_us`. Control inputs: `roi`, `period_us`,
    and `targets` — a list of {x, y, radius?, intensity?, vx?, vy?} that replaces the targets of the
    'targets' scene, so a controller or a swarm world can decide what the camera sees.
    """

    # Declared variable-length: subclasses (swarm.camera) change the ports.
    inputs: ClassVar[tuple[str, ...]] = ("roi", "period_us", "targets")
    outputs: ClassVar[tuple[str, ...]] = ("events", "label")

    class Params(NodeParams):
        width: int = Field(128, gt=0)
        height: int = Field(128, gt=0)
        scene: Literal["gestures", "bars", "shapes", "targets"] = "gestures"
        classes: list[str] | None = None
        seed: int = 0
        period_us: int = Field(10_000, gt=0)
        speed: float = Field(1.0, ge=0)
        duration_us: int | None = Field(None, gt=0)
        step_us: int = Field(1000, gt=0)
        c_on: float = Field(0.2, gt=0)
        c_off: float = Field(0.2, gt=0)
        sigma: float = Field(0.03, ge=0)
        refractory_us: int = Field(500, ge=0)
        leak_hz: float = Field(0.1, ge=0)
        shot_noise_hz: float = Field(1.0, ge=0)
        roi: list[int] | None = None

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        with param_errors(ctx):
            self.cam = SyntheticEventCamera(
                p.width,
                p.height,
                p.scene,
                p.seed,
                classes=p.classes,
                c_on=p.c_on,
                c_off=p.c_off,
                sigma=p.sigma,
                refractory_us=p.refractory_us,
                leak_hz=p.leak_hz,
                shot_noise_hz=p.shot_noise_hz,
                step_us=p.step_us,
            )
        self.width, self.height = p.width, p.height
        self.roi = parse_roi(p.roi, p.width, p.height) if p.roi is not None else None
        self.period_us = p.period_us

    def set_period(self, period_us: int) -> None:
        self.period_us = period_us

    async def on_input(self, port: str, msg: Message) -> None:
        if port != "targets":
            await super().on_input(port, msg)
            return
        if not isinstance(self.cam.scene, Targets):
            self.ctx.log.warning("'targets' input ignored: scene is %r, not 'targets'", self.ctx.params.scene)
            return
        try:
            self.cam.scene.targets = [Target(**dict(t)) for t in msg.payload or []]
        except (TypeError, ValueError) as exc:
            self.ctx.log.warning("ignored targets message: %s", exc)
            self.ctx.counter("bad_control")

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        pacer = Pacer(ctx.clock, p.speed)
        while not ctx.stop_event.is_set():
            if p.duration_us is not None and self.cam.t_us >= p.duration_us:
                return
            dt = (
                self.period_us
                if p.duration_us is None
                else min(self.period_us, p.duration_us - self.cam.t_us)
            )
            t0 = self.cam.t_us
            # The class shown during this batch: taken at its start, since the render at its end
            # (t1) already belongs to the next gesture when batches line up with trials.
            label = self.cam.label
            self.cam.roi = self.roi
            events = await asyncio.to_thread(self.cam.step, dt)  # CPU work off the event loop
            t_sense = await pacer.wait(self.cam.t_us)
            await ctx.emit(
                "events",
                {
                    "events": events,
                    "width": self.width,
                    "height": self.height,
                    "t0_us": t0,
                    "t1_us": self.cam.t_us,
                },
                t_sense=t_sense,
            )
            await ctx.emit("label", label, t_sense=t_sense)
