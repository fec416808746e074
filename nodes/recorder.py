"""The recorder node: writes every message it receives to an MCAP file (added to a graph by `edgeloop record`)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Literal

from pydantic import Field

from runtime.message import Message
from runtime.node import Context, Node, Params
from runtime.recording import RecordingWriter

__all__ = ["McapRecorder"]


class McapRecorder(Node):
    """Records each input message (any input name; the message's own topic names its channel).

    `edgeloop record` gives it one input per recorded topic and runs it in its own agent, so the
    compression and file writes happen in another process than the graph's loops. The open chunk is
    flushed every `flush_s`, so a crash loses at most that much; the summary is written at teardown.
    """

    dynamic_inputs = True

    class Params(Params):
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
        self.writer = RecordingWriter(
            p.path, compression=p.compression, chunk_bytes=p.chunk_kb * 1024, metadata=p.metadata
        )
        for topic in p.topics:
            self.writer.add_topic(topic)
        # Wall-clock flushes (not ctx.clock): a simulated clock must not be advanced by the recorder.
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every(p.flush_s))

    async def _flush_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            self.writer.flush()

    async def on_input(self, port: str, msg: Message) -> None:
        self.writer.write(msg)
        self.ctx.counter("recorded")

    async def teardown(self) -> None:
        self._flusher.cancel()
        # Synchronous on purpose: the runtime's teardown timeout cannot cut the summary in half.
        self.writer.close({"received": json.dumps(self.writer.counts), "closed_ns": str(time.time_ns())})
