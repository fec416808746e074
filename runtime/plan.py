"""A worker's plan: everything one agent's process needs, written by the launcher (or a daemon) as JSON."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import GraphError
from .node import BackendSetting

__all__ = [
    "WorkerPlan",
    "Activation",
    "standby_ready_path",
    "routing_id",
    "worker_pythonpath",
    "PLAN_ENV",
    "WORKER_COMMAND",
]

#: The only variables of the launcher's worker environment that travel with a plan to another host
#: (no PATH, no LD_*): its daemon's own environment, keys and broker apply there.
PLAN_ENV = (
    "EDGELOOP_LOG",
    "EDGELOOP_METRICS",
    "EDGELOOP_MAX_MESSAGE_BYTES",
    "EDGELOOP_MAX_TAP_SUBSCRIPTIONS",
)

#: How a worker starts: `-P` keeps the current directory (and the script's) off `sys.path`.
WORKER_COMMAND = (sys.executable, "-P", "-m", "runtime.worker")
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # where this `runtime` package lives


def worker_pythonpath(user: str) -> str:
    """A worker's `PYTHONPATH`: the user's entries, then the directory this `runtime` came from (so a
    worker imports the same edgeloop as its launcher, installed or not, without the current directory).
    Empty entries are dropped: Python reads one as the current directory."""
    parts = [p for p in user.split(os.pathsep) if p]
    return os.pathsep.join(parts + ([_PACKAGE_ROOT] if _PACKAGE_ROOT not in parts else []))


_TYPES: dict[str, type | tuple[type, ...]] = {
    "agent": str,
    "graph_text": str,
    "graph_file": str,
    "overrides": list,
    "wiring": dict,
    "incarnation": int,
    "run_dir": str,
    "env": dict,
    "backend": (str, dict, type(None)),
    "secret": str,
}
_REQUIRED = ("agent", "graph_text", "graph_file", "overrides", "wiring", "incarnation")


@dataclass
class WorkerPlan:
    """One agent's part of a run: the graph (text, file name, `--set` overrides), the wiring, its
    incarnation, the run directory and environment, and the hardware backend override for its nodes
    (`edgeloop run --backend`; None: the graph's own `backend:`).

    `secret` (hex) is the agent's run secret: the worker proves with it, through `routing_id`, that its
    control messages are its own. Empty: the worker's identity is its agent name (tests only; a
    launcher drops every message from such a worker)."""

    agent: str
    graph_text: str
    graph_file: str
    overrides: list[str]
    wiring: dict[str, Any]
    incarnation: int = 0
    run_dir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    backend: BackendSetting | None = None
    secret: str = ""

    @property
    def identity(self) -> bytes:
        """This incarnation's control-channel identity."""
        if not self.secret:
            return self.agent.encode()
        try:
            return routing_id(bytes.fromhex(self.secret), self.agent, self.incarnation)
        except ValueError as exc:
            raise GraphError(f"worker plan of agent '{self.agent}': its secret is not hex") from exc

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.backend, Mapping):
            d["backend"] = dict(self.backend)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkerPlan:
        """A plan from its JSON object; `GraphError` names every missing, mistyped or unknown key."""
        if not isinstance(d, Mapping):
            raise GraphError(f"not a worker plan: a {type(d).__name__}, not an object")
        bad = [k for k, t in _TYPES.items() if (k in d or k in _REQUIRED) and not _is(d.get(k), t)]
        extra = sorted(set(d) - set(_TYPES))
        if bad or extra:
            raise GraphError(
                f"not a worker plan: bad or missing {', '.join(bad) or '-'}; "
                f"unknown {', '.join(map(str, extra)) or '-'}"
            )
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        return cls.from_dict(json.loads(text))


def _is(v: object, t: type | tuple[type, ...]) -> bool:
    return isinstance(v, t) and not (isinstance(v, bool) and t is int)


@dataclass(frozen=True, slots=True)
class Activation:
    """The launcher's word to a standby worker (one JSON line on its stdin): become incarnation
    `incarnation` with the current `wiring`. End of input instead means "not needed"."""

    incarnation: int
    wiring: dict[str, Any]

    def to_line(self) -> bytes:
        return json.dumps({"incarnation": self.incarnation, "wiring": self.wiring}).encode() + b"\n"

    @classmethod
    def from_line(cls, line: str) -> Activation:
        d = json.loads(line)
        if (
            not isinstance(d, dict)
            or not _is(d.get("incarnation"), int)
            or not isinstance(d.get("wiring"), dict)
        ):
            raise GraphError(f"not a standby activation: {line[:200]!r}")
        return cls(d["incarnation"], d["wiring"])


def routing_id(secret: bytes, agent: str, incarnation: int) -> bytes:
    """The control-channel identity of `agent`'s incarnation `incarnation`: an HMAC of both under the
    agent's run secret, so only a process holding the secret can speak for the agent, and each
    incarnation (a restart, a warm spare taking over) speaks under its own name."""
    mac = hmac.new(secret, f"{agent}/{incarnation}".encode(), hashlib.sha256).hexdigest()
    return f"w{mac[:40]}".encode()


def standby_ready_path(plan_path: str | Path) -> Path:
    """Written by a standby worker (`python -m runtime.worker --standby PLAN`) once it has loaded the graph."""
    return Path(f"{plan_path}.ready")
