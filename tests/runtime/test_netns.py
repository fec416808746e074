"""Two namespaces as two hosts: CURVE-encrypted ZeroMQ, MQTT liveness via last will, a graph deployed across them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import NetnsPair, netns_skip_reason, two_hosts
from remote_helpers import ENV, Daemon, make_keys

from runtime.security import generate_keypair

CHILD = Path(__file__).with_name("netns_child.py")
FLEET_CHILD = Path(__file__).parent / "fleet" / "fleet_child.py"
PY = sys.executable
BROKER_MAIN = (
    "import argparse, sys; from runtime.fleet.cli import register_broker_command; "
    "ap = argparse.ArgumentParser(); register_broker_command(ap.add_subparsers()); "
    "a = ap.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)

_reason = netns_skip_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@pytest.fixture
def hosts() -> Iterator[NetnsPair]:
    with two_hosts() as pair:
        yield pair


class Child:
    """A subprocess whose stdout lines we read with a deadline; killed and reaped on exit."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, argv: list[str]) -> Child:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc)

    async def line(self, timeout_s: float = 15.0) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        return raw.decode().strip()

    async def reap(self) -> int:
        if self.proc.returncode is None:
            try:
                return await asyncio.wait_for(self.proc.wait(), 10.0)
            except TimeoutError:
                self.proc.kill()
        return await asyncio.wait_for(self.proc.wait(), 5.0)


async def test_curve_push_in_a_reaches_pull_in_b_in_order(hosts: NetnsPair, tmp_path: Path) -> None:
    n = 200
    sp, ss = generate_keypair(tmp_path / "server", "brain")
    cp, cs = generate_keypair(tmp_path / "clients", "wearable")
    (tmp_path / "allowed").mkdir()
    shutil.copy(cp, tmp_path / "allowed" / cp.name)
    pull = await Child.start(
        hosts.b.cmd(PY, str(CHILD), "pull", hosts.b.addr, str(n), str(ss), str(tmp_path / "allowed"))
    )
    push = None
    try:
        ready = await pull.line()
        assert ready.startswith("READY "), ready
        port = ready.split()[1]
        push = await Child.start(
            hosts.a.cmd(PY, str(CHILD), "push", hosts.b.addr, port, str(n), str(cs), str(sp))
        )
        got = await pull.line()
        assert got == "GOT " + ",".join(str(i) for i in range(n))
        assert await push.reap() == 0
        assert await pull.reap() == 0
    finally:
        for c in (pull, push):
            if c is not None and c.proc.returncode is None:
                c.proc.kill()
                await c.proc.wait()


async def test_broker_in_a_sees_agent_in_b_die_by_last_will(hosts: NetnsPair) -> None:
    argv = ["broker", "--host", hosts.a.addr, "--allow-remote", "--watch-stdin"]
    broker = await Child.start(hosts.a.cmd(PY, "-c", BROKER_MAIN, *argv))
    children = [broker]
    try:
        ready = await broker.line()
        url = ready.split("=", 1)[1]
        assert url == f"mqtt://{hosts.a.addr}:" + url.rsplit(":", 1)[1]
        observer = await Child.start(hosts.a.cmd(PY, str(CHILD), "observe", url, "bee"))
        children.append(observer)
        agent = await Child.start(hosts.b.cmd(PY, str(FLEET_CHILD), url, "bee", "--heartbeat-s", "0.2"))
        children.append(agent)
        assert await agent.line() == "READY"
        assert await observer.line() == "ONLINE"
        agent.proc.kill()  # `ip netns exec` execs python, so this is the agent itself
        assert await observer.line() == "OFFLINE lost"
        assert await observer.reap() == 0
    finally:
        for c in reversed(children):
            if c.proc.returncode is None:
                c.proc.kill()
                await c.proc.wait()


async def test_launcher_in_a_runs_a_graph_with_an_agent_in_b_over_curve(
    hosts: NetnsPair, tmp_path: Path
) -> None:
    """The whole stack across two network stacks: `edgeloop run` in A (embedded broker on 10.77.0.1),
    `edgeloop agent` in B; the graph's data crosses the veth both ways over CURVE, nothing lost."""
    keys_a, keys_b = make_keys(tmp_path)
    port = 18830 + os.getpid() % 1000
    graph = tmp_path / "g.yaml"
    graph.write_text(f"""
name: netns
agents:
  a: {{}}
  b: {{host: {hosts.b.addr}}}
nodes:
  - {{id: src, uses: source.counter, agent: a, params: {{count: 2000}}}}
  - {{id: relay, uses: transform.relay, agent: b, inputs: {{in: {{from: src/out, policy: backpressure}}}}}}
  - {{id: sink, uses: sink.counter, agent: a, inputs: {{in: {{from: relay/out, policy: backpressure}}}}}}
""")
    stats = tmp_path / "stats.json"
    daemon = await Daemon.start(tmp_path, port, "b", keys_b, host=hosts.a.addr, prefix=hosts.b.cmd())
    try:
        run = await asyncio.create_subprocess_exec(
            *hosts.a.cmd(
                PY,
                "-m",
                "runtime.cli",
                "run",
                str(graph),
                "--keys",
                str(keys_a),
                "--broker-port",
                str(port),
                "--stats-json",
                str(stats),
            ),
            env={**os.environ, **ENV},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(run.communicate(), 120)
        finally:
            if run.returncode is None:
                run.kill()
                await run.wait()
    finally:
        await daemon.stop()
    assert run.returncode == 0, (out.decode(errors="replace")[-3000:], daemon.log())
    result = json.loads(stats.read_text())
    c = result["view"]["nodes"]["sink"]["counters"]
    assert c["received"] == 2000 and c.get("skipped", 0) == 0 and c.get("out_of_order", 0) == 0
    assert all(e["dropped"] == 0 for e in result["view"]["edges"].values())
    b = result["view"]["agents"]["b"]["transport"]
    assert b["inbox"].startswith(f"tcp://{hosts.b.addr}:") and b["curve"]
    assert result["view"]["agents"]["a"]["transport"]["inbox"].startswith(f"tcp://{hosts.a.addr}:")
