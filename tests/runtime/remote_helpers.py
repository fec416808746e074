"""Helpers for the multi-host tests: per-host key directories and `edgeloop agent` daemons as subprocesses."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from runtime.security import generate_keypair

__all__ = ["ENV", "Daemon", "make_keys", "wait_for"]

HERE = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "EDGELOOP_LOG": "WARNING"}


def make_keys(tmp: Path, remote: str = "b", local: tuple[str, ...] = ("a", "launcher")) -> tuple[Path, Path]:
    """Key directories as two hosts would hold them: own secrets, everyone's public keys (the documented exchange)."""
    here, there = tmp / "keys-here", tmp / f"keys-{remote}"
    for name in local:
        generate_keypair(here, name)
    generate_keypair(there, remote)
    for name in local:
        shutil.copy(here / f"{name}.key", there)
    shutil.copy(there / f"{remote}.key", here)
    return here, there


async def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)  # polling a condition with a deadline, not sleeping as synchronisation


class Daemon:
    """`edgeloop agent --name NAME` in its own process, logging to a file; killed and reaped by `stop()`."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @classmethod
    async def start(
        cls,
        tmp: Path,
        port: int,
        name: str,
        keys: Path,
        *,
        host: str = "127.0.0.1",
        prefix: list[str] | None = None,
        log_name: str = "daemon.log",
    ) -> Daemon:
        log_path = tmp / log_name
        argv = [
            *(prefix or []),
            sys.executable,
            "-m",
            "runtime.cli",
            "agent",
            "--broker",
            f"mqtt://{host}:{port}",
            "--name",
            name,
            "--keys",
            str(keys),
            "--anonymous",
            "--connect-timeout-s",
            "0",
            "--reconnect-max-s",
            "0.25",
            "--heartbeat-s",
            "0.3",
            "--telemetry-s",
            "0.5",
        ]
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env={**os.environ, **ENV},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        return cls(proc, log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 5)
