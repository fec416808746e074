"""Shared pieces for control-plane tests: fleet constants, the broker under test, child processes."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from mosquitto_broker import Mosquitto

__all__ = ["FLEET", "USERS", "BrokerUnderTest", "start_child", "reap"]

FLEET = "test"
USERS = ("alice", "bob", "carol", "ops", "child", "hung", "admin")
CHILD = Path(__file__).with_name("fleet_child.py")


@dataclass
class BrokerUnderTest:
    """What a parametrised test needs: the URL and per-agent credentials (none for amqtt)."""

    kind: str
    url: str
    mosquitto: Mosquitto | None = None

    def creds(self, user: str) -> dict[str, str]:
        return self.mosquitto.creds(user) if self.mosquitto else {}


async def start_child(
    url: str, name: str, *args: str, creds: dict[str, str] | None = None, timeout_s: float = 10.0
) -> asyncio.subprocess.Process:
    """Start fleet_child.py (a FleetClient in its own process) and wait for its READY line."""
    c = creds or {}
    cmd = [sys.executable, str(CHILD), url, name, "--fleet", FLEET, *args]
    if c:
        cmd += ["--username", c["username"], "--password", c["password"]]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if line.strip() != b"READY":
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"child {name} did not start: {line!r}")
    return proc


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill a child if it still runs and wait for it (bounded)."""
    if proc.returncode is None:
        proc.kill()
    await asyncio.wait_for(proc.wait(), 5)
