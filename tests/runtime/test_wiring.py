"""Endpoint planning: ipc on one host, tcp + CURVE across hosts, advertised addresses, moved ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import GraphError
from runtime.graph import load_graph
from runtime.wiring import Wiring, local_address_towards, plan_wiring, remote_agents

TWO_HOSTS = """
name: w
agents: {a: {}, b: {host: 10.9.8.7}}
nodes:
  - {id: src, uses: source.counter, agent: a}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: {from: src/out, policy: backpressure}}}
"""


def test_one_host_is_ipc_without_curve(tmp_path: Path) -> None:
    g = load_graph("w.yaml", text=TWO_HOSTS.replace("{host: 10.9.8.7}", "{}"))
    w = plan_wiring(g, tmp_path)
    assert not w.curve and not w.remote and w.control.startswith("ipc://")
    assert all(ep.startswith("ipc://") for ep in [*w.inbox.values(), *w.bp_inbox.values(), *w.tap.values()])
    curve = plan_wiring(g, tmp_path, transport="curve")  # tcp + CURVE on loopback, control stays ipc
    assert (
        curve.curve and curve.inbox["b"].startswith("tcp://127.0.0.1:") and curve.control.startswith("ipc://")
    )


def test_remote_agent_gets_tcp_curve_and_a_reachable_control_socket(tmp_path: Path) -> None:
    g = load_graph("w.yaml", text=TWO_HOSTS)
    assert remote_agents(g) == ["b"]
    w = plan_wiring(g, tmp_path, advertise="127.0.0.1")
    assert w.curve and w.remote == ["b"]
    assert w.control.startswith("tcp://127.0.0.1:") and w.bind[w.control] == w.control
    assert w.inbox["b"].startswith("tcp://10.9.8.7:") and w.bind[w.inbox["b"]].startswith("tcp://0.0.0.0:")
    assert w.bp_inbox["sink/in"].startswith("tcp://10.9.8.7:")
    assert w.inbox["a"].startswith("tcp://127.0.0.1:")
    assert w.tap["a"].startswith("ipc://") and w.tap["b"].startswith(
        "tcp://10.9.8.7:"
    )  # tools use local taps
    assert w.agent_of_endpoint(g, w.bp_inbox["sink/in"]) == "b"
    assert Wiring.from_dict(w.to_dict()) == w


def test_an_advertised_address_that_is_not_local_binds_all_interfaces(tmp_path: Path) -> None:
    w = plan_wiring(load_graph("w.yaml", text=TWO_HOSTS), tmp_path, advertise="203.0.113.5")  # NAT'd
    assert w.inbox["a"].startswith("tcp://203.0.113.5:") and w.bind[w.inbox["a"]].startswith("tcp://0.0.0.0:")


def test_a_moved_port_is_used_everywhere(tmp_path: Path) -> None:
    g = load_graph("w.yaml", text=TWO_HOSTS)
    w = plan_wiring(g, tmp_path, advertise="127.0.0.1")
    old = w.bp_inbox["sink/in"]
    w.rebind(old, "tcp://10.9.8.7:4242")
    assert (
        w.bp_inbox["sink/in"] == "tcp://10.9.8.7:4242"
        and w.bind["tcp://10.9.8.7:4242"] == "tcp://0.0.0.0:4242"
    )
    assert old not in w.bind


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    g = load_graph("w.yaml", text=TWO_HOSTS)
    with pytest.raises(GraphError, match="advertise"):
        plan_wiring(g, tmp_path)
    reserved = load_graph(
        "w.yaml", text=TWO_HOSTS.replace("a: {}", "launcher: {}").replace("agent: a", "agent: launcher")
    )
    with pytest.raises(GraphError, match="reserved for the launcher"):
        plan_wiring(reserved, tmp_path, advertise="127.0.0.1")
    with pytest.raises(GraphError, match="transport 'udp'"):
        plan_wiring(g, tmp_path, transport="udp")
    assert local_address_towards("127.0.0.2").startswith("127.")
