"""Nodes used only by the fault-injection tests (`test_faults.py`), loaded by `module:Class` (workers
get this folder on PYTHONPATH)."""

from __future__ import annotations

import resource
import signal

from runtime.message import Message
from runtime.node import Context, Node, Params


class Panic(BaseException):
    """Stands in for a native library's panic (pyo3's PanicException is a BaseException too)."""


class PanickingSource(Node):
    """Emits `before` messages, then panics."""

    outputs = ("out",)

    class Params(Params):
        before: int = 3

    async def run(self, ctx: Context) -> None:
        for i in range(ctx.params.before):
            await ctx.emit("out", i)
        raise Panic("the native decoder panicked")


class PanickingSink(Node):
    """Counts messages; panics on the `at`-th."""

    inputs = ("in",)

    class Params(Params):
        at: int = 2

    async def setup(self, ctx: Context) -> None:
        self.ctx, self.n = ctx, 0

    async def on_input(self, port: str, msg: Message) -> None:
        self.n += 1
        self.ctx.counter("received")
        if self.n == self.ctx.params.at:
            raise Panic(f"panicked on message {self.n}")


class FileSizeLimit(Node):
    """Limits the size of every file its worker writes (RLIMIT_FSIZE) from its setup on: a write past
    it fails with EFBIG, as a full disk fails with ENOSPC (SIGXFSZ ignored, so the process lives on)."""

    inputs = ("in",)

    class Params(Params):
        bytes: int

    async def setup(self, ctx: Context) -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (ctx.params.bytes, hard))

    async def on_input(self, port: str, msg: Message) -> None:
        pass
