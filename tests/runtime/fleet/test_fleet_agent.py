"""The agent daemon: deploy/stop/status through the broker, telemetry, and a clean exit on SIGTERM.

`run_part` here is a recording fake: the real worker (runtime/worker.py) is wired in by the launcher
later; these tests pin down the daemon's side of that contract.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap

from runtime.fleet.agent import AgentDaemon
from runtime.fleet.broker import EmbeddedBroker
from runtime.fleet.client import FleetClient
from runtime.fleet.commands import DEPLOY
from runtime.fleet.events import ReplyReceived, TelemetryReceived

GRAPH = "name: demo\nnodes: []\n"


class FakeRunPart:
    """Records each call and runs until its stop event is set, then returns `code`."""

    def __init__(self, code: int = 0, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.started = asyncio.Event()
        self.code, self.fail = code, fail

    async def __call__(self, graph_yaml: str, agent: str, stop: asyncio.Event) -> int:
        self.calls.append((graph_yaml, agent))
        self.started.set()
        if self.fail:
            raise RuntimeError("node 'cam' failed in setup")
        await stop.wait()
        return self.code


async def serve(daemon: AgentDaemon, stop: asyncio.Event) -> asyncio.Task[int]:
    task = asyncio.create_task(daemon.run(stop))
    return task


async def test_deploy_stop_status_and_telemetry() -> None:
    fake = FakeRunPart(code=3)
    stop = asyncio.Event()
    async with EmbeddedBroker() as b, FleetClient(b.url, "ops", watch_telemetry=True) as ops:
        daemon = AgentDaemon(b.url, "alice", run_part=fake, heartbeat_s=0.2, telemetry_period_s=0.1)
        task = await serve(daemon, stop)
        await ops.wait_for_agent("alice")
        reply = await ops.deploy("alice", GRAPH, part="brain", timeout_s=3.0)
        assert reply.ok and reply.body["accepted"] and reply.body["part"] == "brain"
        await asyncio.wait_for(fake.started.wait(), 3.0)
        # The same deploy delivered twice (same id) runs the part once and is answered twice.
        for _ in range(2):
            await ops.send_command("alice", DEPLOY, {"graph_yaml": GRAPH, "agent": "brain"}, command_id="d-2")
        answers = []
        async for ev in ops.events():
            if isinstance(ev, ReplyReceived):
                answers.append(ev.reply)
                if len(answers) == 2:
                    break
        assert [a.id for a in answers] == ["d-2", "d-2"] and not answers[0].ok
        assert "already running part 'brain'; send stop first" in answers[0].error
        assert fake.calls == [(GRAPH, "brain")]
        async for ev in ops.events():  # telemetry carries the part state and process health
            if isinstance(ev, TelemetryReceived) and ev.telemetry.data["part"]["state"] == "running":
                assert ev.telemetry.data["rss_bytes"] > 0
                break
        stopped = await ops.stop_part("alice", timeout_s=3.0)
        assert stopped.ok and stopped.body["state"] == "exited" and stopped.body["exit_code"] == 3
        status = await ops.request("alice", "status", timeout_s=3.0)
        assert status.body["exit_code"] == 3
        stop.set()
        assert await asyncio.wait_for(task, 5.0) == 0
        assert (await ops.wait_for_agent("alice", "offline")).reason == "shutdown"


async def test_failing_part_is_reported() -> None:
    fake = FakeRunPart(fail=True)
    stop = asyncio.Event()
    async with EmbeddedBroker() as b, FleetClient(b.url, "ops") as ops:
        task = await serve(AgentDaemon(b.url, "alice", run_part=fake, telemetry=None), stop)
        await ops.wait_for_agent("alice")
        assert (await ops.deploy("alice", GRAPH, timeout_s=3.0)).ok
        await asyncio.wait_for(fake.started.wait(), 3.0)
        status = await ops.request("alice", "status", timeout_s=3.0)
        stop.set()
        await asyncio.wait_for(task, 5.0)
    assert status.body["state"] == "exited" and status.body["exit_code"] == 1
    assert status.body["error"] == "RuntimeError: node 'cam' failed in setup"
    assert fake.calls == [(GRAPH, "alice")]


async def test_agent_without_runner_refuses_deploys() -> None:
    stop = asyncio.Event()
    async with EmbeddedBroker() as b, FleetClient(b.url, "ops") as ops:
        task = await serve(AgentDaemon(b.url, "alice", run_part=None, telemetry=None), stop)
        await ops.wait_for_agent("alice")
        reply = await ops.deploy("alice", GRAPH, timeout_s=3.0)
        stop.set()
        await asyncio.wait_for(task, 5.0)
    assert not reply.ok and "no part runner wired in" in reply.error


async def test_cli_agent_exits_cleanly_on_sigterm() -> None:
    code = textwrap.dedent(
        """
        import argparse, sys
        from runtime.fleet.cli import register_agent_command
        ap = argparse.ArgumentParser(prog="edgeloop")
        register_agent_command(ap.add_subparsers())
        args = ap.parse_args(sys.argv[1:])
        sys.exit(args.func(args))
        """
    )
    async with EmbeddedBroker() as b, FleetClient(b.url, "ops") as ops:
        argv = ["agent", "--broker", b.url, "--name", "alice", "--anonymous", "--telemetry-s", "0.2"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, *argv, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            info = await ops.wait_for_agent("alice", timeout_s=10.0)
            assert info.pid == proc.pid and info.info == {"role": "agent"}
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 5.0) == 0
            assert (await ops.wait_for_agent("alice", "offline")).reason == "shutdown"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
