"""Where every agent listens: ipc paths on one host, tcp ports across hosts. Pure function of the graph."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .graph import Graph

__all__ = ["Wiring", "plan_wiring", "is_local_host", "free_tcp_port"]

_LOCAL = {"localhost", "127.0.0.1", "::1", "", None}


def is_local_host(host: str | None) -> bool:
    return host in _LOCAL or (host is not None and host in (socket.gethostname(), socket.getfqdn()))


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Wiring:
    """Endpoints: one lossy inbox per agent, one inbox per backpressure input fed from another agent."""

    control: str
    inbox: dict[str, str] = field(default_factory=dict)  # agent -> endpoint (latest / drop_oldest traffic)
    bp_inbox: dict[str, str] = field(default_factory=dict)  # "node/input" -> endpoint (backpressure traffic)
    bind: dict[str, str] = field(default_factory=dict)  # endpoint -> what to bind (tcp binds the agent's host)
    tap: dict[str, str] = field(default_factory=dict)  # agent -> XPUB endpoint for `topic echo/hz`
    telemetry: str = ""  # the launcher's PUB of merged statistics, for `edgeloop top`

    def to_dict(self) -> dict[str, object]:
        return {"control": self.control, "inbox": self.inbox, "bp_inbox": self.bp_inbox, "bind": self.bind,
                "tap": self.tap, "telemetry": self.telemetry}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Wiring:
        return cls(str(d["control"]), dict(d["inbox"]), dict(d["bp_inbox"]), dict(d["bind"]), dict(d["tap"]),
                   str(d["telemetry"]))


def plan_wiring(graph: Graph, run_dir: Path, *, transport: str = "auto") -> Wiring:
    """ipc:// under `run_dir` (a 0700 directory) when all agents share a host, tcp:// otherwise.

    `transport="tcp"` forces tcp on loopback (for benchmarks and tests of the tcp path).
    """
    agents = graph.agents
    hosts = {a.host if not is_local_host(a.host) else "127.0.0.1" for a in agents.values()}
    use_tcp = transport == "tcp" or len(hosts) > 1
    w = Wiring(control=f"ipc://{run_dir}/control.sock", telemetry=f"ipc://{run_dir}/telemetry.sock")

    def endpoint(agent: str, name: str) -> str:
        if not use_tcp:
            return f"ipc://{run_dir}/{name}.sock"
        host = agents[agent].host or "127.0.0.1"
        host = "127.0.0.1" if is_local_host(host) and not agents[agent].host else host
        ep = f"tcp://{host}:{free_tcp_port(host if is_local_host(host) else '0.0.0.0')}"
        w.bind[ep] = ep if is_local_host(host) else ep.replace(f"//{host}:", "//0.0.0.0:")
        return ep

    for agent in agents:
        w.inbox[agent] = endpoint(agent, f"inbox-{agent}")
        # Taps are for tools on the launcher's host: ipc, unless that agent runs elsewhere.
        w.tap[agent] = endpoint(agent, f"tap-{agent}") if use_tcp else f"ipc://{run_dir}/tap-{agent}.sock"
    for e in graph.edges:
        if e.is_timer or e.spec.policy != "backpressure":
            continue
        src_agent = graph.agent_of(e.source.split("/")[0])
        dst_agent = graph.agent_of(e.target_node)
        if src_agent != dst_agent:
            key = f"{e.target_node}/{e.target_input}"
            w.bp_inbox[key] = endpoint(dst_agent, f"bp-{e.target_node}-{e.target_input}")
    return w
