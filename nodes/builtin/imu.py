"""IMU sources: replay of CSV / AEDAT4 IMU recordings and the synthetic wearable, paced at `speed`."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from models.io import load_checkpoint
from nodes.builtin._params import param_errors
from nodes.builtin.pacing import Pacer
from nodes.sensors.events import RecordingFormatError, sniff
from nodes.sensors.imu import (
    ACTIVITIES,
    GYRO_COLUMNS,
    UNITS,
    ImuRecording,
    ImuStream,
    RateConfig,
    RateController,
    SyntheticImu,
    iter_imu_csv,
    read_aedat_imu,
    resample_count,
)
from runtime.errors import RecordingError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["ImuReplay", "SyntheticImuSource", "ImuRateController"]


class _ModelFacts:
    """What the model file named by `label_names` expects of the stream (None where it does not say)."""

    def __init__(self, file: str | None = None, meta: dict[str, Any] | None = None) -> None:
        self.file = file
        meta = meta or {}
        har = meta.get("har_input")
        mean = har.get("mean") if isinstance(har, dict) else None
        self.channels: int | None = len(mean) if isinstance(mean, list) else None
        pre = meta.get("pretrain")
        rate = meta.get("rate_hz", pre.get("rate_hz") if isinstance(pre, dict) else None)
        self.rate_hz: float | None = float(rate) if isinstance(rate, int | float) and rate > 0 else None


def _label_names(ctx: Context) -> tuple[list[str] | None, _ModelFacts]:
    """`label_names` as a list: given, or read from the model file it names (meta "label_names"), and
    what that model file says of its input (sample channels, rate)."""
    names: list[str] | str | None = ctx.params.label_names
    if not isinstance(names, str):
        return names, _ModelFacts()
    with param_errors(ctx, "label_names"):  # a ModelFileError is a ValueError
        ck = load_checkpoint(names)
        found = ck.meta.get("label_names")
        if not found:
            raise ValueError(f"model file {names} has no 'label_names' meta; list the class names instead")
    return [str(n) for n in found], _ModelFacts(names, ck.meta)


def _apart(a: float, b: float) -> float:
    """|a − b| relative to b."""
    return abs(a - b) / b


def _control_rate(ctx: Context, msg: Message) -> float | None:
    """A `rate_hz` control message as a rate > 0, or None (logged and counted as `bad_control`)."""
    try:
        rate = float(msg.payload)
        if not rate > 0:
            raise ValueError(f"rate_hz must be > 0, got {msg.payload!r}")
    except (TypeError, ValueError) as exc:
        ctx.log.warning("ignored rate_hz control message: %s", exc)
        ctx.counter("bad_control")
        return None
    return rate


class ImuReplay(Node):
    """Replay an IMU CSV (`t_s,ax,ay,az[,gx,gy,gz][,label]`) or the IMU stream of an AEDAT4 file.

    Emits one float32 (6,) `sample` (ax, ay, az m/s²; gx, gy, gz rad/s) per time step, and its
    `label` (int, −1 unlabelled) when the file has labels. Label numbers come from the model that will
    use them: `label_names` is a model file (its classes, meta "label_names") or the class names in the
    model's order; a label the model does not know then stops the replay with an error naming the line.
    Without `label_names` names are numbered as the synthetic activities, unknown ones appended as first
    seen (what pre-training on these files does). `rate_hz` resamples (None = as recorded);
    the `rate_hz` control input changes it while running, from the current time on. A CSV streams
    from disk `chunk_rows` rows at a time (`nodes.sensors.imu.ImuStream`), so memory stays flat for any
    length and a bad line fails only after every row before it was sent; `loop` re-reads it each
    pass unless it fit in one chunk. An AEDAT4 file's IMU stream is read whole at setup (a few
    thousand samples a minute) and replayed through the same stream.

    An accelerometer-only CSV (`t_s,ax,ay,az[,label]`) replays with NaN gyro (one WARNING, counter
    `no_gyro`); it fails at setup when `label_names` is a model file whose input has gyro channels.
    When the recorded rate (mean over the first chunk) differs by more than 5 % from `rate_hz`, or
    the rate emitted from the model file's training rate (meta "rate_hz"), one WARNING names both
    rates (counter `rate_mismatch`).
    """

    inputs = ("rate_hz",)
    outputs = ("sample", "label")
    file_params = ("path",)
    #: Rows parsed per step: ~8 µs a row, so a step holds the event loop ~4 ms, under one period at 200 Hz.
    chunk_rows: ClassVar[int] = 512

    class Params(NodeParams):
        path: str
        rate_hz: float | None = Field(None, gt=0)
        speed: float = Field(1.0, ge=0)
        loop: bool = False
        label_names: list[str] | str | None = Field(
            None,
            description="the model's classes: a model file, or the names in its order "
            "(None: the synthetic activities, unknown names appended)",
        )

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rate_hz: float | None = ctx.params.rate_hz
        self.whole: ImuRecording | None = None  # the recording, when it is small enough to keep
        self.label_names, model = _label_names(ctx)
        self.stream = self._open()  # reads the first chunk, so that a bad header fails at setup
        self.ran = False
        self._check(self.stream, model)

    def _check(self, stream: ImuStream, model: _ModelFacts) -> None:
        """Accelerometer-only recordings and rate mismatches, judged on the first chunk."""
        ctx, path = self.ctx, self.ctx.params.path
        if not stream.has_gyro:
            cols = ", ".join(f"'{c}' ({UNITS[c]})" for c in GYRO_COLUMNS)
            if model.channels is not None and model.channels > 3:
                self.stream.close()
                raise RecordingError(
                    f"node '{ctx.node_id}': {path} has no gyroscope columns {cols}, but the model "
                    f"{model.file} (param label_names) takes {model.channels} channels (ax, ay, az m/s²; "
                    "gx, gy, gz rad/s): replay a recording with a gyroscope, or use a model trained on "
                    "accelerometer only (edgeloop train har makes 6-channel models)"
                )
            ctx.log.warning("%s has no gyroscope columns %s: sample's gx, gy, gz are NaN", path, cols)
            ctx.counter("no_gyro")
        recorded = stream.first_rate_hz
        if recorded > 0 and self.rate_hz is not None and _apart(recorded, self.rate_hz) > 0.05:
            ctx.log.warning(
                "%s is recorded at %.4g Hz but rate_hz is %.4g Hz: resampled by linear interpolation",
                path,
                recorded,
                self.rate_hz,
            )
            ctx.counter("rate_mismatch")
        emitted = self.rate_hz or recorded
        if model.rate_hz is not None and emitted > 0 and _apart(emitted, model.rate_hz) > 0.05:
            ctx.log.warning(
                "%s replays at %.4g Hz but the model %s was trained at %.4g Hz: set rate_hz: %.4g",
                path,
                emitted,
                model.file,
                model.rate_hz,
                model.rate_hz,
            )
            ctx.counter("rate_mismatch")

    def _open(self) -> ImuStream:
        """A new pass over the recording, its first chunk read; file errors as `RecordingError`."""
        p = self.ctx.params
        chunks: Generator[ImuRecording, None, None]
        try:
            if self.whole is None and sniff(p.path)[0] == "aedat4":
                self.whole = read_aedat_imu(p.path)  # whole: AEDAT4 IMU is a few thousand samples a minute
            if self.whole is not None:
                chunks = _chunks_of(self.whole, self.chunk_rows)
            else:
                chunks = iter_imu_csv(
                    p.path,
                    self.chunk_rows,
                    self.label_names,
                    strict=self.label_names is not None,
                    accel_only=True,
                )
            first = next(chunks, None)
        except RecordingFormatError as exc:
            raise RecordingError(f"node '{self.ctx.node_id}': {exc}") from exc
        if first is None:
            if self.whole is not None:
                raise RecordingError(f"node '{self.ctx.node_id}': {p.path} has no IMU samples")
            raise RecordingError(f"node '{self.ctx.node_id}': {p.path}: no samples after the header")
        return ImuStream(first, chunks)

    async def on_input(self, port: str, msg: Message) -> None:
        rate = _control_rate(self.ctx, msg)
        if rate is not None:
            self.rate_hz = rate

    async def run(self, ctx: Context) -> None:
        if self.ran:  # run again (after a stop): start over, as the first run did
            self.stream.close()
            self.stream = self._open()
        self.ran = True
        pacer = Pacer(ctx.clock, ctx.params.speed)
        t_first = self.stream.t_first_s
        offset_s = 0.0  # added per loop pass so that time keeps increasing
        t_done = -np.inf  # recording time of the last emitted sample
        while not ctx.stop_event.is_set():
            rate = self.rate_hz
            try:
                block = self.stream.take(t_done, rate)
            except RecordingFormatError as exc:
                raise RecordingError(f"node '{ctx.node_id}': {exc}") from exc
            if block is None:
                if not ctx.params.loop:
                    return
                offset_s += _pass_s(self.stream, rate)
                if self.whole is None:  # a file that fit in one chunk is kept, not re-read every pass
                    self.whole = self.stream.whole()
                self.stream, t_done = self._open(), -np.inf
                continue
            for i in range(len(block)):
                if self.rate_hz != rate or ctx.stop_event.is_set():
                    break  # rate_hz changed: take again at the new rate after the last emitted time
                t_sense = await pacer.wait((float(block.t_s[i]) - t_first + offset_s) * 1e6)
                sample = np.concatenate([block.accel[i], block.gyro[i]]).astype(np.float32)
                await ctx.emit("sample", sample, t_sense=t_sense)
                if block.labels is not None:
                    await ctx.emit("label", int(block.labels[i]), t_sense=t_sense)
                t_done = float(block.t_s[i])

    async def teardown(self) -> None:
        if hasattr(self, "stream"):
            self.stream.close()


def _chunks_of(rec: ImuRecording, n: int) -> Generator[ImuRecording, None, None]:
    """`rec` in slices of `n` samples, as a file would be read."""
    for i in range(0, len(rec), n):
        yield rec.slice(i, i + n)


def _pass_s(stream: ImuStream, rate_hz: float | None) -> float:
    """How far one `loop` pass moves time: the span of the recording at `rate_hz` plus one mean sample
    period, computed as from `resample(whole, rate_hz)` (the rows read are all gone by now)."""
    n, t0, t1 = stream.count, stream.t_first_s, stream.t_last_s
    if rate_hz is not None and n > 1:
        n = resample_count(t0, t1, rate_hz)
        t1 = t0 + (n - 1) / rate_hz
    mean_hz = (n - 1) / (t1 - t0) if n > 1 else 0.0
    return (t1 - t0) + 1.0 / max(mean_hz, 1e-9)


class SyntheticImuSource(Node):
    """The synthetic wearable (`nodes.sensors.imu.SyntheticImu`) as a source: `sample` float32 (6,) and `label`.

    `activities` is a schedule of [name, seconds] bouts (None: endless random bouts); labels index
    `nodes.sensors.imu.ACTIVITIES` (walking, running, standing, sitting, stairs_up, stairs_down). The wearable
    samples at `rate_hz`; the `rate_hz` control input (action-to-sensing) lowers the rate it emits at,
    down to any value ≤ `rate_hz`, from the next sample on (a sample is emitted once 1/rate has passed
    since the previous one).
    """

    inputs = ("rate_hz",)
    outputs = ("sample", "label")

    class Params(NodeParams):
        activities: list[tuple[str, float]] | None = None
        subject_seed: int = 0
        rate_hz: float = Field(50.0, gt=0)
        noise: float = Field(1.0, ge=0)
        drift: float = Field(1.0, ge=0)
        subject_shift: float = Field(1.0, ge=0)
        seed: int | None = None
        speed: float = Field(1.0, ge=0)
        duration_s: float | None = Field(None, gt=0)

    async def setup(self, ctx: Context) -> None:
        p = ctx.params
        with param_errors(ctx, hint=f" (activities: {', '.join(ACTIVITIES)})"):
            self.imu = SyntheticImu(
                p.activities,
                p.subject_seed,
                rate_hz=p.rate_hz,
                noise=p.noise,
                drift=p.drift,
                subject_shift=p.subject_shift,
                seed=p.seed,
            )
        self.limit = None if p.duration_s is None else int(round(p.duration_s * p.rate_hz))
        self.ctx = ctx
        self.emit_hz = float(p.rate_hz)

    async def on_input(self, port: str, msg: Message) -> None:
        rate = _control_rate(self.ctx, msg)
        if rate is None:
            return
        if rate > self.ctx.params.rate_hz:
            self.ctx.counter("rate_clamped")
        self.emit_hz = min(rate, float(self.ctx.params.rate_hz))
        self.ctx.gauge("rate_hz", self.emit_hz)

    async def run(self, ctx: Context) -> None:
        pacer = Pacer(ctx.clock, ctx.params.speed)
        chunk = max(1, int(ctx.params.rate_hz // 10))  # generate ~100 ms at a time, emit sample by sample
        n = 0
        t_next = 0.0  # stream time (s) of the next sample to emit at the current rate
        while not ctx.stop_event.is_set():
            want = chunk if self.limit is None else min(chunk, self.limit - n)
            if want <= 0:
                return
            x, y = self.imu.read(want)
            if not len(x):
                return
            for row, label in zip(x, y, strict=True):
                t_s = n / ctx.params.rate_hz
                n += 1
                if t_s + 1e-9 < t_next:
                    continue  # not sensed at the current rate
                t_next = t_s + 1.0 / self.emit_hz
                t_sense = await pacer.wait(t_s * 1e6)
                await ctx.emit("sample", row, t_sense=t_sense)
                await ctx.emit("label", int(label), t_sense=t_sense)
                ctx.counter("samples")
                if ctx.stop_event.is_set():
                    return
            await asyncio.sleep(0)


class ImuRateController(Node):
    """Action-to-sensing for a wearable: asks its IMU for `high_hz` while the wearer moves and `low_hz`
    while they keep still (std of |a| over `window_s` against `still_below` / `moving_above`, m/s²).
    Wire its `rate_hz` output back to the IMU's `rate_hz` input (policy `latest`)."""

    inputs = ("sample",)
    outputs = ("rate_hz",)

    class Params(NodeParams):
        high_hz: float = Field(50.0, gt=0)
        low_hz: float = Field(10.0, gt=0)
        window_s: float = Field(1.0, gt=0)
        still_below: float = Field(0.3, gt=0)
        moving_above: float = Field(0.5, gt=0)

    async def setup(self, ctx: Context) -> None:
        p = ctx.params
        with param_errors(ctx):
            cfg = RateConfig(p.high_hz, p.low_hz, p.window_s, p.still_below, p.moving_above)
        self.ctx = ctx
        self.ctl = RateController(cfg)

    async def on_input(self, port: str, msg: Message) -> None:
        rate = self.ctl.observe(msg.t_sense_ns / 1e9, np.asarray(msg.payload, dtype=np.float64))
        if rate is not None:
            self.ctx.counter("switches")
            self.ctx.gauge("rate_hz", rate)
            await self.ctx.emit("rate_hz", rate, t_sense=msg)
