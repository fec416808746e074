"""Where every agent listens: ipc paths on one host, tcp ports (CURVE-encrypted) across hosts."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GraphError
from .graph import Graph

__all__ = [
    "Wiring",
    "plan_wiring",
    "is_local_host",
    "free_tcp_port",
    "remote_agents",
    "local_address_towards",
    "can_bind",
    "LAUNCHER_KEY",
    "TRANSPORTS",
]

_LOCAL = {"localhost", "127.0.0.1", "::1", "", None}
#: Key pair name of the launcher (its control socket is a CURVE server when agents run on other hosts).
LAUNCHER_KEY = "launcher"
#: auto: ipc on one host, tcp + CURVE across hosts; tcp: tcp on loopback; curve: tcp + CURVE on loopback.
TRANSPORTS = ("auto", "tcp", "curve")


def is_local_host(host: str | None) -> bool:
    return host in _LOCAL or (host is not None and host in (socket.gethostname(), socket.getfqdn()))


def remote_agents(graph: Graph) -> list[str]:
    """Agents whose `host` is another machine: the launcher deploys them through the broker."""
    return [name for name, spec in graph.agents.items() if not is_local_host(spec.host)]


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def can_bind(host: str) -> bool:
    """True if `host` is an address of this machine (a NAT'd or DNS-only name is not)."""
    try:
        free_tcp_port(host)
    except OSError:
        return False
    return True


def local_address_towards(host: str) -> str:
    """This machine's source address for packets to `host` (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return str(s.getsockname()[0])
    except OSError as exc:
        raise GraphError(
            f"cannot find a local address that reaches host {host!r} ({exc}); "
            "pass --advertise ADDRESS (this machine's address as the other hosts see it)"
        ) from exc


@dataclass
class Wiring:
    """Endpoints: one lossy inbox per agent, one inbox per backpressure input fed from another agent.

    With `curve`, every tcp inbox and tap is a CURVE server admitting the keys in the local key
    directory, every PUSH a CURVE client of its destination agent's key, and a tcp control socket a
    CURVE server with the `LAUNCHER_KEY` pair. `remote` lists the agents deployed through the broker.
    """

    control: str
    inbox: dict[str, str] = field(default_factory=dict)  # agent -> endpoint (latest / drop_oldest traffic)
    bp_inbox: dict[str, str] = field(default_factory=dict)  # "node/input" -> endpoint (backpressure traffic)
    bind: dict[str, str] = field(
        default_factory=dict
    )  # endpoint -> what to bind (tcp binds the agent's host)
    tap: dict[str, str] = field(default_factory=dict)  # agent -> XPUB endpoint for `topic echo/hz`
    telemetry: str = ""  # the launcher's PUB of merged statistics, for `edgeloop top`
    curve: bool = False
    remote: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "control": self.control,
            "inbox": self.inbox,
            "bp_inbox": self.bp_inbox,
            "bind": self.bind,
            "tap": self.tap,
            "telemetry": self.telemetry,
            "curve": self.curve,
            "remote": self.remote,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Wiring:
        return cls(
            str(d["control"]),
            dict(d["inbox"]),
            dict(d["bp_inbox"]),
            dict(d["bind"]),
            dict(d["tap"]),
            str(d["telemetry"]),
            bool(d.get("curve", False)),
            list(d.get("remote", [])),
        )

    def rebind(self, old: str, new: str) -> None:
        """A worker could not bind `old` (port taken on its host) and bound `new` instead: use it everywhere."""
        for table in (self.inbox, self.bp_inbox, self.tap):
            for k, v in table.items():
                if v == old:
                    table[k] = new
        bind = self.bind.pop(old, old)
        self.bind[new] = bind.rsplit(":", 1)[0] + ":" + new.rsplit(":", 1)[1]

    def agent_of_endpoint(self, graph: Graph, ep: str) -> str | None:
        """Which agent binds `ep` (whose CURVE server key a PUSH to it must name)."""
        for agent, e in self.inbox.items():
            if e == ep:
                return agent
        for key, e in self.bp_inbox.items():
            if e == ep:
                return graph.agent_of(key.split("/")[0])
        return None


def plan_wiring(
    graph: Graph, run_dir: Path, *, transport: str = "auto", advertise: str | None = None
) -> Wiring:
    """ipc:// under `run_dir` (a 0700 directory) when all agents share this host, tcp:// + CURVE otherwise.

    `transport="tcp"` forces tcp on loopback (benchmarks and tests of the tcp path), `"curve"` adds
    CURVE to it. With agents on other hosts, local agents and the control socket listen on
    `advertise` (this host's address as the others reach it), remote agents on all their interfaces
    at a proposed port (a worker that finds it taken binds another and reports it).
    """
    if transport not in TRANSPORTS:
        raise GraphError(f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
    agents = graph.agents
    remote = remote_agents(graph)
    if remote and advertise is None:
        raise GraphError(f"agents {', '.join(remote)} run on other hosts: an advertise address is needed")
    if remote and LAUNCHER_KEY in agents:
        raise GraphError(f"agent name '{LAUNCHER_KEY}' is reserved for the launcher's key pair across hosts")
    use_tcp = transport != "auto" or bool(remote)
    w = Wiring(
        control=f"ipc://{run_dir}/control.sock",
        telemetry=f"ipc://{run_dir}/telemetry.sock",
        curve=transport == "curve" or bool(remote),
        remote=remote,
    )
    local_bind = advertise if advertise is not None and can_bind(advertise) else "0.0.0.0"
    if remote and advertise is not None:
        port = free_tcp_port(local_bind)
        w.control = f"tcp://{advertise}:{port}"
        w.bind[w.control] = f"tcp://{local_bind}:{port}"

    def endpoint(agent: str, name: str) -> str:
        if not use_tcp:
            return f"ipc://{run_dir}/{name}.sock"
        if remote and advertise is not None:
            if agent in remote:
                host, bind = str(agents[agent].host), "0.0.0.0"
                port = free_tcp_port("0.0.0.0")  # a proposal: free here, most likely free there
            else:
                host, bind = advertise, local_bind
                port = free_tcp_port(bind)
            ep = f"tcp://{host}:{port}"
            w.bind[ep] = f"tcp://{bind}:{port}"
            return ep
        host = agents[agent].host or "127.0.0.1"
        host = "127.0.0.1" if is_local_host(host) and not agents[agent].host else host
        ep = f"tcp://{host}:{free_tcp_port(host if is_local_host(host) else '0.0.0.0')}"
        w.bind[ep] = ep if is_local_host(host) else ep.replace(f"//{host}:", "//0.0.0.0:")
        return ep

    for agent in agents:
        w.inbox[agent] = endpoint(agent, f"inbox-{agent}")
        # Taps are for tools on the launcher's host: ipc there (encrypted tcp only where an agent runs elsewhere).
        tap_tcp = agent in remote or (transport == "tcp" and not remote)
        w.tap[agent] = endpoint(agent, f"tap-{agent}") if tap_tcp else f"ipc://{run_dir}/tap-{agent}.sock"
    for e in graph.edges:
        if e.is_timer or e.spec.policy != "backpressure":
            continue
        src_agent = graph.agent_of(e.source.split("/")[0])
        dst_agent = graph.agent_of(e.target_node)
        if src_agent != dst_agent:
            key = f"{e.target_node}/{e.target_input}"
            w.bp_inbox[key] = endpoint(dst_agent, f"bp-{e.target_node}-{e.target_input}")
    return w
