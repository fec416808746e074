"""The `edgeloop agent` daemon: joins the fleet, runs the graph part it is deployed, reports telemetry.

One daemon per host (or per agent). It announces itself on the broker, waits for `deploy` and
`stop` commands from the launcher (`edgeloop run`), and runs its part through an injected
`run_part(graph_yaml, agent, stop_event) -> exit code` coroutine, so this module needs no worker
code: the launcher wires the real worker in. One part runs at a time; a second `deploy` while one
runs is refused ("send stop first"), and a duplicate of the same deploy is answered, not rerun.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import CodecError, GraphError
from . import protocol as p
from ._tasks import cancel_and_wait
from .fleet import DEPLOY, STOP, FleetClient

__all__ = ["RunPart", "TelemetrySource", "PartState", "AgentDaemon", "process_telemetry"]

log = logging.getLogger("edgeloop.agent")

#: `run_part(graph_yaml, agent, stop_event) -> exit code`: run `agent`'s part until done or stop is set.
RunPart = Callable[[str, str, asyncio.Event], Coroutine[Any, Any, int]]
#: Returns the telemetry to publish (rates, drops, health); called from the event loop, keep it quick.
TelemetrySource = Callable[[], Mapping[str, Any]]


@dataclass(slots=True)
class PartState:
    """What the daemon is running: idle, running (part name) or exited (with its exit code)."""

    state: Literal["idle", "running", "exited"] = "idle"
    part: str = ""
    exit_code: int | None = None
    started: float = 0.0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "part": self.part,
            "exit_code": self.exit_code,
            "started": self.started,
            "error": self.error,
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

    With `run_part=None` the agent joins the fleet, answers ping/status, and refuses deploys.

    Telemetry `{"part": PartState, **telemetry()}` goes out every `telemetry_period_s`.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        run_part: RunPart | None,
        fleet: str = "default",
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        telemetry: TelemetrySource | None = process_telemetry,
        telemetry_period_s: float = 1.0,
        heartbeat_s: float = 1.0,
        stop_grace_s: float = 5.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.name = p.check_name("agent name", name)
        self.part = PartState()
        self._run_part = run_part
        self._telemetry = telemetry
        self._telemetry_period_s = telemetry_period_s
        self._stop_grace_s = stop_grace_s
        self._part_stop = asyncio.Event()
        self._part_task: asyncio.Task[int] | None = None
        self.client = FleetClient(
            url,
            name,
            fleet,
            username=username,
            password=password,
            tls=tls,
            heartbeat_s=heartbeat_s,
            connect_timeout_s=connect_timeout_s,
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
            try:
                await stop.wait()
            finally:
                await cancel_and_wait([reporter])
                await self._stop_part()
        return 0

    # -- command handlers -----------------------------------------------------------------------

    async def _on_deploy(self, cmd: p.Command) -> dict[str, Any]:
        body = cmd.body if isinstance(cmd.body, dict) else {}
        graph_yaml, part = body.get("graph_yaml"), body.get("agent", self.name)
        if not isinstance(graph_yaml, str) or not isinstance(part, str) or not part:
            raise GraphError("deploy needs body {'graph_yaml': <YAML text>, 'agent': <part name>}")
        if self._run_part is None:
            raise GraphError(
                f"agent {self.name!r} has no part runner wired in (AgentDaemon(run_part=None)); "
                "this build of `edgeloop agent` can join a fleet but not run graphs yet"
            )
        if self._part_task is not None and not self._part_task.done():
            raise GraphError(
                f"agent {self.name!r} is already running part {self.part.part!r}; send stop first"
            )
        self._part_stop = asyncio.Event()
        self.part = PartState("running", part, None, time.time())
        self._part_task = asyncio.create_task(self._run_part(graph_yaml, part, self._part_stop))
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
        await self._stop_part()
        return self.part.as_dict()

    async def _on_status(self, cmd: p.Command) -> dict[str, Any]:
        return self.part.as_dict()

    # -- internals ------------------------------------------------------------------------------

    def _part_done(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            self.part = PartState(
                "exited", self.part.part, -1, self.part.started, "cancelled after stop grace"
            )
        elif (exc := task.exception()) is not None:
            log.error("part %r failed: %s", self.part.part, exc, exc_info=exc)
            self.part = PartState(
                "exited", self.part.part, 1, self.part.started, f"{type(exc).__name__}: {exc}"
            )
        else:
            self.part = PartState("exited", self.part.part, int(task.result()), self.part.started)

    async def _stop_part(self) -> None:
        task = self._part_task
        if task is None or task.done():
            return
        self._part_stop.set()
        done, _ = await asyncio.wait({task}, timeout=self._stop_grace_s)
        if not done:
            log.warning("part %r ignored stop for %.1f s; cancelling it", self.part.part, self._stop_grace_s)
            await cancel_and_wait([task], timeout_s=self._stop_grace_s)

    async def _report(self) -> None:
        while True:
            data: dict[str, Any] = {"part": self.part.as_dict()}
            if self._telemetry is not None:
                try:
                    data.update(self._telemetry())
                except Exception as exc:  # telemetry must never take the agent down
                    data["telemetry_error"] = f"{type(exc).__name__}: {exc}"
            try:
                await self.client.publish_telemetry(data)
            except CodecError as exc:  # a telemetry source returned something JSON cannot carry
                log.warning("telemetry not published: %s", exc)
            await asyncio.sleep(self._telemetry_period_s)
