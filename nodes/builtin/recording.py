"""MCAP recording nodes: `record.mcap` writes a run, `replay.mcap` plays recorded topics back.

`edgeloop record` adds a `record.mcap` node to a graph, which writes every message it receives;
`replay.mcap` emits recorded topics as its outputs at `speed` × real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Generator
from typing import Literal

from pydantic import Field

from runtime.errors import RecordingError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams
from runtime.recording import RecordingReader, RecordingWriter
from runtime.recording.info import read_overview

__all__ = ["McapRecorder", "McapReplay"]


class McapRecorder(Node):
    """Records each input message (any input name; the message's own topic names its channel).

    `edgeloop record` gives it one input per recorded topic and runs it in its own agent, so the
    compression and file writes happen in another process than the graph's loops. The open chunk is
    flushed every `flush_s`, so a crash loses at most that much; the summary is written at teardown.

    A write that fails (a full disk: ENOSPC; a file-size limit: EFBIG) fails the node loudly, with the
    number of messages recorded before the fault: at the next message, or at teardown if none comes.
    Nothing more is written then, so the file holds a readable prefix: every chunk written before.
    """

    dynamic_inputs = True

    class Params(NodeParams):
        path: str
        topics: list[str] = Field(default_factory=list, description="channels registered up front")
        compression: Literal["zstd", "lz4", "none"] = "zstd"
        chunk_kb: int = Field(
            1024, ge=1, le=1 << 20, description="uncompressed chunk size before compression"
        )
        flush_s: float = Field(1.0, gt=0, description="close the open chunk at least this often")
        metadata: dict[str, str] = Field(
            default_factory=dict, description="the 'edgeloop.graph' metadata record"
        )

    async def setup(self, ctx: Context) -> None:
        p = ctx.params
        self.ctx = ctx
        self.fault: RecordingError | None = None
        self.recorded = 0
        self.writer = RecordingWriter(
            p.path, compression=p.compression, chunk_bytes=p.chunk_kb * 1024, metadata=p.metadata
        )
        for topic in p.topics:
            self.writer.add_topic(topic)
        self._flush_at = time.monotonic() + p.flush_s
        # Wall-clock flushes (not ctx.clock): a simulated clock must not be advanced by the recorder.
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every(p.flush_s))

    async def _flush_every(self, period_s: float) -> None:
        while self.fault is None:  # after a fault, the next hook (or teardown) reports it
            await asyncio.sleep(max(0.0, self._flush_at - time.monotonic()))
            if time.monotonic() >= self._flush_at:
                try:
                    self._flush()
                except RecordingError as exc:
                    self.ctx.log.error("%s", exc)

    def _flush(self) -> None:
        self._flush_at = time.monotonic() + self.ctx.params.flush_s
        self._guard(self.writer.flush)

    def _guard(self, write: Callable[[], None]) -> None:
        if self.fault is not None:
            raise self.fault
        try:
            write()
        except OSError as exc:
            self.fault = RecordingError(
                f"node '{self.ctx.node_id}': writing {self.ctx.params.path} failed after "
                f"{self.recorded} messages recorded ({exc.strerror or exc}); the file stays readable "
                "up to the last chunk written before; nothing more is written"
            )
            raise self.fault from exc

    async def on_input(self, port: str, msg: Message) -> None:
        self._guard(lambda: self.writer.write(msg))  # a full chunk is written out here
        self.recorded += 1
        self.ctx.counter("recorded")
        if time.monotonic() >= self._flush_at:  # flushes ride on the messages; the task covers lulls
            self._flush()

    async def teardown(self) -> None:
        self._flusher.cancel()
        if self.fault is not None:
            with contextlib.suppress(OSError):  # what was flushed stays; the summary cannot be written
                self.writer.close()
            raise self.fault
        # Synchronous on purpose: the runtime's teardown timeout cannot cut the summary in half.
        self._guard(
            lambda: self.writer.close(
                {"received": json.dumps(self.writer.counts), "closed_ns": str(time.time_ns())}
            )
        )


class McapReplay(Node):
    """Emits the recorded messages of `topics` (output port → recorded topic) with their payloads unchanged.

    Pacing follows the recorded emit times (MCAP log_time): message k is due at
    t_go + (t_emit,k − t_window_start)/speed; speed 0 emits as fast as downstream accepts. With
    `timestamps: recorded` each message keeps its recorded t_sense (bit-exact round trip); with
    `replay` it becomes t_go + (t_sense − t_window_start)/speed (speed 0: no scaling), so latency
    figures mean something. `start_s`/`end_s` are seconds after the first message of the file.
    Outputs are whatever the graph declares for this node (`edgeloop replay` copies them).
    """

    file_params = ("path",)

    class Params(NodeParams):
        path: str
        topics: dict[str, str] | None = Field(
            None, description="output → recorded topic; default: '<id>/<output>'"
        )
        speed: float = Field(1.0, ge=0, description="1 = as recorded; 0 = as fast as downstream accepts")
        loops: int = Field(1, ge=0, description="passes over the window; 0 = until the graph stops")
        start_s: float = Field(0.0, ge=0)
        end_s: float | None = Field(None, gt=0)
        timestamps: Literal["recorded", "replay"] = "recorded"

    async def setup(self, ctx: Context) -> None:
        p = ctx.params
        self.ctx = ctx
        self.reader = RecordingReader(p.path)
        recorded = read_overview(p.path).topics
        if p.topics is None:
            prefix = f"{ctx.node_id}/"
            self.ports = {t: t[len(prefix) :] for t in recorded if t.startswith(prefix)}
        else:
            self.ports = {topic: port for port, topic in p.topics.items()}
        missing = [t for t in self.ports if t not in recorded]
        if missing or not self.ports:
            want = ", ".join(missing) if missing else f"'{ctx.node_id}/…' (set the `topics` parameter)"
            raise RecordingError(
                f"node '{ctx.node_id}': {p.path} has no topic {want}; recorded topics: "
                f"{', '.join(recorded) or 'none'}"
            )
        if p.end_s is not None and p.end_s <= p.start_s:
            raise RecordingError(f"node '{ctx.node_id}': end_s {p.end_s} must be after start_s {p.start_s}")
        entries = self.reader.entries()
        first = next(entries, None)  # the file's first message anchors the window
        if isinstance(entries, Generator):  # it holds the file open: close it now, not when collected
            entries.close()
        self.t0_ns = 0 if first is None else first.log_time_ns

    async def run(self, ctx: Context) -> None:
        p = ctx.params
        ref = self.t0_ns + int(p.start_s * 1e9)
        lo = ref if p.start_s > 0 else None
        hi = None if p.end_s is None else self.t0_ns + int(p.end_s * 1e9)
        scale = p.speed or 1.0
        passes, t_next = 0, ctx.clock.now_ns()
        while p.loops == 0 or passes < p.loops:
            # Each pass starts where the last one ended on the replay clock, so retimed t_sense keeps rising.
            t_go, n, last = max(ctx.clock.now_ns(), t_next), 0, 0
            for entry, msg in self.reader.messages(self.ports, start_ns=lo, end_ns=hi):
                if ctx.stop_event.is_set():
                    return
                offset = max(0, entry.log_time_ns - ref)
                last = max(last, offset)
                if p.speed > 0:
                    await ctx.clock.sleep_until_ns(t_go + int(offset / p.speed))
                if n % 64 == 63:
                    # A past due time does not suspend: yield anyway, or a replay running behind (or at
                    # speed 0) would starve the other nodes of its agent.
                    await asyncio.sleep(0)
                t_sense = (
                    msg.t_sense_ns
                    if p.timestamps == "recorded"
                    else t_go + int((msg.t_sense_ns - ref) / scale)
                )
                await ctx.emit(self.ports[entry.topic], msg.payload, t_sense=t_sense)
                ctx.counter("replayed")
                n += 1
            passes += 1
            ctx.gauge("passes", passes)
            if n == 0:
                return  # an empty window would loop forever
            t_next = t_go + int(last / scale) + 1
