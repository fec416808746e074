"""The `edgeloop agent` daemon: joins the fleet, runs the graph part it is deployed, reports telemetry.

One daemon per host (or per agent). It announces itself on the broker, waits for `deploy` and
`stop` commands from the launcher (`edgeloop run`), and runs its part through an injected
`run_part(graph_yaml, agent, stop_event) -> exit code` coroutine, or, when the deploy carries a
worker plan (what `edgeloop run` sends: graph, overrides, wiring, incarnation), through
`run_plan(plan, stop_event) -> exit code` (runtime/remote.py runs `python -m runtime.worker`), so
this module needs no worker code. One part runs at a time; a second `deploy` while one runs is
refused ("send stop first"), and a duplicate of the same deploy is answered, not rerun. When the
part exits, telemetry goes out at once (the launcher restarts it per policy); when the agent that
deployed a plan goes offline (its last will), the part is stopped: nobody is left to supervise it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import CodecError, GraphError
from . import protocol as p
from ._tasks import cancel_and_wait
from .client import FleetClient
from .commands import DEPLOY, STOP
from .events import AgentChanged

__all__ = [
    "RunPart",
    "RunPlan",
    "PartFailed",
    "TelemetrySource",
    "PartState",
    "AgentDaemon",
    "process_telemetry",
]

log = logging.getLogger("edgeloop.agent")

#: `run_part(graph_yaml, agent, stop_event) -> exit code`: run `agent`'s part until done or stop is set.
RunPart = Callable[[str, str, asyncio.Event], Coroutine[Any, Any, int]]
#: `run_plan(plan, stop_event) -> exit code`: run a worker plan (a JSON object) until it exits or stop is set.
RunPlan = Callable[[dict[str, Any], asyncio.Event], Coroutine[Any, Any, int]]
#: Returns the telemetry to publish (rates, drops, health); called from the event loop, keep it quick.
TelemetrySource = Callable[[], Mapping[str, Any]]


class PartFailed(Exception):
    """Raised by a part runner to report a non-zero exit code with the reason (e.g. its log's last lines)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(slots=True)
class PartState:
    """What the daemon is running: idle, running (part name) or exited (with its exit code)."""

    state: Literal["idle", "running", "exited"] = "idle"
    part: str = ""
    exit_code: int | None = None
    started: float = 0.0
    error: str = ""
    incarnation: int | None = None  # of a worker plan: tells a restarted part from its predecessor
    deployer: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "part": self.part,
            "exit_code": self.exit_code,
            "started": self.started,
            "error": self.error,
            "incarnation": self.incarnation,
            "deployer": self.deployer,
        }


def process_telemetry() -> dict[str, Any]:
    """Default telemetry: this process's CPU %, resident memory and thread count (psutil)."""
    import psutil

    proc = psutil.Process()
    with proc.oneshot():
        return {
            "cpu_percent": proc.cpu_percent(None),
            "rss_bytes": proc.memory_info().rss,
            "threads": proc.num_threads(),
        }


class AgentDaemon:
    """Serve one agent until `stop` is set: `await AgentDaemon(url, "cam1", run_part=...).run(stop)`.

    With `run_part=None` and `run_plan=None` the agent joins the fleet, answers ping/status, and
    refuses deploys. `deployers`: the only senders whose deploy/stop it obeys (None: any fleet member).

    Telemetry `{"part": PartState, **telemetry()}` goes out every `telemetry_period_s`.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        run_part: RunPart | None,
        run_plan: RunPlan | None = None,
        fleet: str = "default",
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        telemetry: TelemetrySource | None = process_telemetry,
        telemetry_period_s: float = 1.0,
        heartbeat_s: float = 1.0,
        stop_grace_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        reconnect_max_s: float = 5.0,
        deployers: Collection[str] | None = None,
    ) -> None:
        self.name = p.check_name("agent name", name)
        self.part = PartState()
        self._run_part = run_part
        self._run_plan = run_plan
        self._deployers = frozenset(deployers) if deployers is not None else None
        self._telemetry = telemetry
        self._telemetry_period_s = telemetry_period_s
        self._stop_grace_s = stop_grace_s
        self._part_stop = asyncio.Event()
        self._part_task: asyncio.Task[int] | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self.client = FleetClient(
            url,
            name,
            fleet,
            username=username,
            password=password,
            tls=tls,
            heartbeat_s=heartbeat_s,
            connect_timeout_s=connect_timeout_s,
            reconnect_max_s=reconnect_max_s,
            info={"role": "agent"},
        )
        self.client.on_command(DEPLOY, self._on_deploy)
        self.client.on_command(STOP, self._on_stop)
        self.client.on_command("status", self._on_status)

    async def run(self, stop: asyncio.Event) -> int:
        """Connect, serve commands until `stop` is set, stop any running part, go offline. Returns 0."""
        async with self.client:
            log.info(
                "agent %r online in fleet %r at %s", self.name, self.client.fleet, self.client.broker_url
            )
            reporter = asyncio.create_task(self._report())
            watcher = asyncio.create_task(self._watch_deployer())
            try:
                await stop.wait()
            finally:
                await cancel_and_wait([reporter, watcher])
                await self._stop_part()
                if self._reports:  # the final "exited" report, bounded
                    await asyncio.wait(set(self._reports), timeout=1.0)
                await cancel_and_wait(list(self._reports))
        return 0

    # -- command handlers -----------------------------------------------------------------------

    def _check_sender(self, cmd: p.Command) -> None:
        # The sender is the topic level the broker authenticated, never a payload field.
        if self._deployers is not None and cmd.sender not in self._deployers:
            raise GraphError(
                f"agent {self.name!r} takes {cmd.kind} only from {', '.join(sorted(self._deployers))}, "
                f"not from {cmd.sender!r}"
            )

    async def _on_deploy(self, cmd: p.Command) -> dict[str, Any]:
        self._check_sender(cmd)
        body = cmd.body if isinstance(cmd.body, dict) else {}
        graph_yaml, part = body.get("graph_yaml"), body.get("agent", self.name)
        plan = body.get("plan")
        if not isinstance(graph_yaml, str) or not isinstance(part, str) or not part:
            raise GraphError("deploy needs body {'graph_yaml': <YAML text>, 'agent': <part name>}")
        if plan is not None:
            if not isinstance(plan, dict) or plan.get("agent", part) != part:
                raise GraphError(f"deploy 'plan' must be a worker plan object for part {part!r}")
            if self._run_plan is None:
                raise GraphError(f"agent {self.name!r} cannot run worker plans (AgentDaemon(run_plan=None))")
        elif self._run_part is None:
            raise GraphError(
                f"agent {self.name!r} has no part runner wired in (AgentDaemon(run_part=None)); "
                "it runs only the worker plans that `edgeloop run` deploys"
            )
        if self._part_task is not None and not self._part_task.done():
            raise GraphError(
                f"agent {self.name!r} is already running part {self.part.part!r}; send stop first"
            )
        self._part_stop = asyncio.Event()
        inc = plan.get("incarnation") if plan is not None else None
        self.part = PartState(
            "running", part, None, time.time(), "", inc if isinstance(inc, int) else None, cmd.sender
        )
        if plan is not None and self._run_plan is not None:
            # The graph travels once, in graph_yaml; the plan carries the rest.
            plan = {**plan, "graph_text": plan.get("graph_text") or graph_yaml}
            coro = self._run_plan(plan, self._part_stop)
        elif self._run_part is not None:
            coro = self._run_part(graph_yaml, part, self._part_stop)
        self._part_task = asyncio.create_task(coro)
        self._part_task.add_done_callback(self._part_done)
        log.info(
            "agent %r deployed part %r (%d bytes of graph) from %r",
            self.name,
            part,
            len(graph_yaml),
            cmd.sender,
        )
        return {"accepted": True, "part": part, "pid": os.getpid()}

    async def _on_stop(self, cmd: p.Command) -> dict[str, Any]:
        self._check_sender(cmd)
        await self._stop_part()
        return self.part.as_dict()

    async def _on_status(self, cmd: p.Command) -> dict[str, Any]:
        return self.part.as_dict()

    # -- internals ------------------------------------------------------------------------------

    def _part_done(self, task: asyncio.Task[int]) -> None:
        old = self.part
        if task.cancelled():
            code, error = -1, "cancelled after stop grace"
        elif isinstance(exc := task.exception(), PartFailed):
            code, error = exc.code, exc.detail
        elif exc is not None:
            log.error("part %r failed: %s", old.part, exc, exc_info=exc)
            code, error = 1, f"{type(exc).__name__}: {exc}"
        else:
            code, error = int(task.result()), ""
        self.part = PartState("exited", old.part, code, old.started, error, old.incarnation, old.deployer)
        # Tell the launcher now rather than at the next telemetry period: it restarts per policy.
        if not self.client.connected:
            return
        report = asyncio.get_running_loop().create_task(self._report_once())
        self._reports.add(report)
        report.add_done_callback(self._reports.discard)

    async def _watch_deployer(self) -> None:
        """Stop a deployed plan when the agent that deployed it goes offline: nobody supervises it any more."""
        async for ev in self.client.events():
            if not isinstance(ev, AgentChanged) or ev.state != "offline":
                continue
            task = self._part_task
            if (
                task is not None
                and not task.done()
                and self.part.incarnation is not None
                and ev.agent == self.part.deployer
            ):
                log.warning(
                    "deployer %r went offline (%s): stopping part %r",
                    ev.agent,
                    ev.info.reason,
                    self.part.part,
                )
                await self._stop_part()

    async def _stop_part(self) -> None:
        task = self._part_task
        if task is None or task.done():
            return
        self._part_stop.set()
        done, _ = await asyncio.wait({task}, timeout=self._stop_grace_s)
        if not done:
            log.warning("part %r ignored stop for %.1f s; cancelling it", self.part.part, self._stop_grace_s)
            await cancel_and_wait([task], timeout_s=self._stop_grace_s)

    def _telemetry_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"part": self.part.as_dict()}
        if self._telemetry is not None:
            try:
                data.update(self._telemetry())
            except Exception as exc:  # telemetry must never take the agent down
                data["telemetry_error"] = f"{type(exc).__name__}: {exc}"
        return data

    async def _report_once(self) -> None:
        try:
            await self.client.publish_telemetry(self._telemetry_data())
        except CodecError as exc:  # a telemetry source returned something JSON cannot carry
            log.warning("telemetry not published: %s", exc)

    async def _report(self) -> None:
        while True:
            await self._report_once()
            await asyncio.sleep(self._telemetry_period_s)
