"""Two network namespaces joined by a veth pair, as two "hosts" 10.77.0.1 and 10.77.0.2 (needs root).

`netns_skip_reason()` says why this cannot run here (not Linux, not root, no `ip`, or creating a
namespace is refused, e.g. in an unprivileged container); tests skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Host", "NetnsPair", "netns_skip_reason", "two_hosts"]

SUBNET = "10.77.0"


@dataclass(frozen=True)
class Host:
    ns: str
    addr: str

    def cmd(self, *argv: str) -> list[str]:
        """argv run inside this namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]


@dataclass(frozen=True)
class NetnsPair:
    a: Host
    b: Host


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


def netns_skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"elprobe{os.getpid()}"
    res = _ip("netns", "add", probe, check=False)
    if res.returncode != 0:
        return f"`ip netns add` is not permitted here: {res.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _kill_inside(ns: str) -> None:
    res = _ip("netns", "pids", ns, check=False)
    for pid in res.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@contextmanager
def two_hosts() -> Iterator[NetnsPair]:
    """Create namespaces A (10.77.0.1) and B (10.77.0.2) linked by veth; always cleaned up."""
    tag = f"{os.getpid() % 100000}"
    pair = NetnsPair(Host(f"elA{tag}", f"{SUBNET}.1"), Host(f"elB{tag}", f"{SUBNET}.2"))
    va, vb = f"elva{tag}", f"elvb{tag}"  # interface names must stay under 16 bytes
    created: list[str] = []
    try:
        for h in (pair.a, pair.b):
            _ip("netns", "add", h.ns)
            created.append(h.ns)
        _ip("link", "add", va, "type", "veth", "peer", "name", vb)
        for h, dev in ((pair.a, va), (pair.b, vb)):
            _ip("link", "set", dev, "netns", h.ns)
            _ip("-n", h.ns, "addr", "add", f"{h.addr}/24", "dev", dev)
            _ip("-n", h.ns, "link", "set", dev, "up")
            _ip("-n", h.ns, "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in created:
            _kill_inside(ns)
            _ip("netns", "del", ns, check=False)  # deleting a namespace deletes its veth end
        _ip("link", "del", va, check=False)
