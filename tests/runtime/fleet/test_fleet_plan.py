"""The agent daemon's worker-plan path: deploys carrying a plan, who may deploy, exit reports, deployer loss."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.fleet.agent import AgentDaemon, PartFailed
from runtime.fleet.broker import EmbeddedBroker
from runtime.fleet.client import FleetClient
from runtime.fleet.events import TelemetryReceived

GRAPH = "name: demo\nnodes: []\n"


class FakeRunPlan:
    """Records plans; exits with PartFailed(-9) when `crash` is set, else runs until stopped."""

    def __init__(self) -> None:
        self.plans: list[dict[str, Any]] = []
        self.started = asyncio.Event()
        self.crash = asyncio.Event()
        self.stopped = asyncio.Event()

    async def __call__(self, plan: dict[str, Any], stop: asyncio.Event) -> int:
        self.plans.append(plan)
        self.started.set()
        crash = asyncio.create_task(self.crash.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({crash, stopping}, return_when=asyncio.FIRST_COMPLETED)
        crash.cancel()
        stopping.cancel()
        if self.crash.is_set():
            raise PartFailed(-9, "worker exited with code -9: killed")
        self.stopped.set()
        return 0


async def _exited(fc: FleetClient, agent: str) -> dict[str, Any]:
    async for ev in fc.events():
        if isinstance(ev, TelemetryReceived) and ev.agent == agent:
            part = ev.telemetry.data["part"]
            if part["state"] == "exited":
                return dict(part)
    raise AssertionError("events ended")


async def test_plan_deploy_only_from_allowed_sender_and_exit_reported_at_once() -> None:
    fake = FakeRunPlan()
    stop = asyncio.Event()
    async with EmbeddedBroker() as b:
        daemon = AgentDaemon(
            b.url,
            "bee",
            run_part=None,
            run_plan=fake,
            telemetry=None,
            telemetry_period_s=60.0,
            heartbeat_s=0.2,
            deployers=["launcher"],
        )
        task = asyncio.create_task(daemon.run(stop))
        try:
            async with FleetClient(b.url, "ops") as ops:
                await ops.wait_for_agent("bee")
                refused = await ops.deploy(
                    "bee", GRAPH, plan={"agent": "bee", "incarnation": 0}, timeout_s=3.0
                )
                assert not refused.ok and "only from launcher, not from 'ops'" in refused.error
            async with FleetClient(b.url, "launcher", watch_telemetry=True) as launcher:
                await launcher.wait_for_agent("bee")
                reply = await launcher.deploy(
                    "bee", GRAPH, plan={"agent": "bee", "incarnation": 4, "graph_text": ""}, timeout_s=3.0
                )
                assert reply.ok, reply.error
                await asyncio.wait_for(fake.started.wait(), 3.0)
                assert fake.plans[0]["graph_text"] == GRAPH  # the graph travels once, in graph_yaml
                wrong = await launcher.deploy("bee", GRAPH, plan={"agent": "other"}, timeout_s=3.0)
                assert not wrong.ok and "worker plan object for part 'bee'" in wrong.error
                fake.crash.set()
                # Reported at once (the telemetry period is 60 s), with the incarnation and the reason.
                part = await asyncio.wait_for(_exited(launcher, "bee"), 5.0)
                assert part["incarnation"] == 4 and part["exit_code"] == -9 and "killed" in part["error"]
                assert part["deployer"] == "launcher"
        finally:
            stop.set()
            await asyncio.wait_for(task, 10.0)


async def test_part_is_stopped_when_its_deployer_goes_offline() -> None:
    fake = FakeRunPlan()
    stop = asyncio.Event()
    async with EmbeddedBroker() as b:
        daemon = AgentDaemon(b.url, "bee", run_part=None, run_plan=fake, telemetry=None, heartbeat_s=0.2)
        task = asyncio.create_task(daemon.run(stop))
        try:
            async with FleetClient(b.url, "launcher") as launcher:
                await launcher.wait_for_agent("bee")
                assert (await launcher.deploy("bee", GRAPH, plan={"agent": "bee", "incarnation": 0})).ok
                await asyncio.wait_for(fake.started.wait(), 3.0)
            # The launcher left (a retained "offline"): nobody supervises the part any more.
            await asyncio.wait_for(fake.stopped.wait(), 5.0)
            assert daemon.part.state == "exited" and daemon.part.exit_code == 0
        finally:
            stop.set()
            await asyncio.wait_for(task, 10.0)
