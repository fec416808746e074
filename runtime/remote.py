"""Agents on other hosts: the launcher's fleet seat (broker, deploy, liveness) and the daemon's plan runner.

`edgeloop run` deploys each remote agent's worker plan through the MQTT broker to the `edgeloop
agent` daemon of the same name, which runs `python -m runtime.worker PLAN` (`run_plan_subprocess`).
The launcher learns that a remote worker has exited from three signals, whichever comes first
[SCIENCE 5.1, 1.1]: the daemon's telemetry says the part exited (sent at once on exit), the daemon
went offline (its last will: its workers stop themselves when their parent vanishes), or the
worker's statistics over the control channel stop (application heartbeats: a frozen loop keeps its
TCP connections). Commands carry ids and are deduplicated, so retries are safe; none is retained.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .errors import EdgeloopError, InputTimeoutError, TransportError
from .fleet import (
    AgentChanged,
    BrokerProcess,
    FleetClient,
    TelemetryReceived,
    start_embedded_broker_process,
)
from .fleet._tasks import cancel_and_wait
from .fleet.agent import PartFailed
from .plan import PLAN_ENV, WORKER_COMMAND, WorkerPlan, worker_pythonpath
from .security import KEYS_DIR_ENV, default_keys_dir, secure_ipc_dir
from .wiring import LAUNCHER_KEY

__all__ = ["RemoteAgents", "run_plan_subprocess", "PLAN_ENV", "EMBEDDED_BROKER_PORT"]

log = logging.getLogger("edgeloop.remote")

#: The embedded broker's port when agents run elsewhere: daemons are started with its URL beforehand.
EMBEDDED_BROKER_PORT = 1883
_MAX_DEPLOY_BYTES = 900_000  # the control plane refuses messages over 1 MiB (protocol.MAX_CONTROL_BYTES)

#: on_exit(agent, incarnation or None for "the current one", exit code or None, reason)
ExitCallback = Callable[[str, int | None, int | None, str], None]


class RemoteAgents:
    """The launcher's seat in the fleet: `await start()`, `deploy(...)`, `state(name)`, `await close()`.

    `broker_url=None` starts the embedded amqtt broker on `advertise:embedded_port` (anonymous:
    development and labs; production fleets use mosquitto with passwords and ACLs).
    """

    def __init__(
        self,
        names: list[str],
        on_exit: ExitCallback,
        *,
        broker_url: str | None,
        fleet: str = "default",
        advertise: str = "127.0.0.1",
        bind_host: str = "127.0.0.1",
        embedded_port: int = EMBEDDED_BROKER_PORT,
        client_name: str = LAUNCHER_KEY,
        deploy_timeout_s: float = 60.0,
        telemetry_period_s: float = 0.5,
    ) -> None:
        self.names = list(names)
        self.on_exit = on_exit
        self.broker_url = broker_url
        self.fleet = fleet
        self.advertise = advertise
        self.bind_host = bind_host
        self.embedded_port = embedded_port
        self.client_name = client_name
        self.deploy_timeout_s = deploy_timeout_s
        self.telemetry_period_s = telemetry_period_s
        self.client: FleetClient | None = None
        self.telemetry_sent = 0
        self._broker: BrokerProcess | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._deploys: dict[str, asyncio.Task[None]] = {}

    async def start(self, telemetry: Callable[[], Mapping[str, Any]] | None = None) -> str:
        """Start the embedded broker if no URL was given, join the fleet, watch it; returns the broker URL."""
        if self.broker_url is None:
            loopback = self.bind_host.startswith("127.")
            try:
                self._broker = await asyncio.to_thread(
                    start_embedded_broker_process,
                    self.bind_host,
                    self.embedded_port,
                    allow_remote=not loopback,
                )
            except TransportError as exc:
                raise TransportError(
                    f"{exc}. Is port {self.embedded_port} taken (a running mosquitto)? Then pass --broker "
                    f"mqtt://{self.advertise}:{self.embedded_port}, or --broker-port P for another port"
                ) from exc
            self.broker_url = f"mqtt://{self.advertise}:{self._broker.url.rsplit(':', 1)[1]}"
            log.info(
                "embedded MQTT broker at %s (anonymous; use mosquitto with passwords and ACLs in production); "
                "on each host: edgeloop agent --broker %s --name AGENT",
                self.broker_url,
                self.broker_url,
            )
        password = os.environ.get("EDGELOOP_BROKER_PASSWORD")
        self.client = FleetClient(
            self.broker_url,
            self.client_name,
            self.fleet,
            watch_telemetry=True,
            heartbeat_s=0.5,
            username=self.client_name if password else None,
            password=password,
            connect_timeout_s=10.0,
            info={"role": "launcher"},
        )
        try:
            await self.client.__aenter__()
        except BaseException:
            self.client = None
            self._stop_broker()
            raise
        self._tasks.append(asyncio.create_task(self._watch(), name="fleet-watch"))
        if telemetry is not None:
            self._tasks.append(asyncio.create_task(self._publish(telemetry), name="fleet-telemetry"))
        return self.broker_url

    def state(self, name: str) -> str:
        """The daemon's liveness as this launcher sees it: online, stale, offline or unknown."""
        info = self.client.agents.get(name) if self.client is not None else None
        return info.state if info is not None else "unknown"

    def deploy(self, name: str, plan: dict[str, Any], graph_text: str, incarnation: int) -> None:
        """Deploy (again) in the background; a failure is reported through `on_exit` as an exit of that incarnation."""
        old = self._deploys.pop(name, None)
        if old is not None:
            old.cancel()
        self._deploys[name] = asyncio.create_task(
            self._deploy(name, plan, graph_text, incarnation), name=f"deploy-{name}"
        )

    async def _deploy(self, name: str, plan: dict[str, Any], graph_text: str, incarnation: int) -> None:
        fc = self.client
        if fc is None:
            return
        body = {**plan, "graph_text": ""}  # the graph travels once, as the deploy's graph_yaml
        if len(graph_text.encode()) + len(str(body)) > _MAX_DEPLOY_BYTES:
            self.on_exit(
                name,
                incarnation,
                None,
                f"graph too large to deploy through the broker (> {_MAX_DEPLOY_BYTES} B with its plan)",
            )
            return
        try:
            await fc.wait_for_agent(name, "online", timeout_s=self.deploy_timeout_s)
            with contextlib.suppress(InputTimeoutError):  # a part left over (a restart, a crashed launcher)
                await fc.stop_part(name, timeout_s=5.0)
            reply = await fc.deploy(name, graph_text, name, plan=body, timeout_s=10.0)
        except (InputTimeoutError, TransportError) as exc:
            self.on_exit(
                name,
                incarnation,
                None,
                f"deploy failed: {exc}; is `edgeloop agent --broker {self.broker_url} --name {name} "
                f"--fleet {self.fleet}` running on that host?",
            )
            return
        if not reply.ok:
            self.on_exit(name, incarnation, None, f"deploy refused by its daemon: {reply.error}")
            return
        log.info(
            "deployed agent '%s' (incarnation %d) to its daemon (pid %s)",
            name,
            incarnation,
            (reply.body or {}).get("pid") if isinstance(reply.body, dict) else "?",
        )

    async def stop_parts(self, names: list[str], timeout_s: float = 5.0) -> dict[str, str]:
        """Ask daemons to stop their parts (SIGTERM, then SIGKILL); returns the errors by agent."""
        fc = self.client
        if fc is None or not names:
            return {}
        for t in [self._deploys.pop(n) for n in names if n in self._deploys]:
            t.cancel()

        async def one(n: str) -> str:
            try:
                rep = await fc.stop_part(n, timeout_s=timeout_s)
            except (InputTimeoutError, TransportError) as exc:
                return str(exc)
            return "" if rep.ok else rep.error

        errors = await asyncio.gather(*(one(n) for n in names))
        return {n: e for n, e in zip(names, errors, strict=True) if e}

    async def close(self) -> None:
        await cancel_and_wait([*self._tasks, *self._deploys.values()])
        self._tasks.clear()
        self._deploys.clear()
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        self._stop_broker()

    def _stop_broker(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    async def _watch(self) -> None:
        if self.client is None:
            return
        async for ev in self.client.events():
            if isinstance(ev, TelemetryReceived) and ev.agent in self.names:
                part = ev.telemetry.data.get("part")
                if (
                    isinstance(part, dict)
                    and part.get("state") == "exited"
                    and part.get("part") == ev.agent
                    and isinstance(part.get("incarnation"), int)
                ):
                    code = part.get("exit_code")
                    reason = part.get("error") or f"exited with code {code}"
                    self.on_exit(
                        ev.agent, part["incarnation"], code if isinstance(code, int) else None, reason
                    )
            elif isinstance(ev, AgentChanged) and ev.agent in self.names and ev.state == "offline":
                self.on_exit(
                    ev.agent, None, None, f"its daemon went offline ({ev.info.reason or 'no reason'})"
                )

    async def _publish(self, telemetry: Callable[[], Mapping[str, Any]]) -> None:
        """Fleet telemetry: per-agent rates, drops and health, QoS 1, every `telemetry_period_s`."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self.client is not None:
            try:
                if await self.client.publish_telemetry(telemetry()):
                    self.telemetry_sent += 1
            except EdgeloopError as exc:  # unencodable telemetry must not stop the run
                log.warning("fleet telemetry not published: %s", exc)
            due = max(due + self.telemetry_period_s, loop.time())
            await asyncio.sleep(due - loop.time())


def _check_plan(plan: Mapping[str, Any]) -> WorkerPlan:
    """The deployed plan, checked (`GraphError` names what is wrong), with only `PLAN_ENV` variables."""
    checked = WorkerPlan.from_dict(plan)
    checked.env = {k: str(v) for k, v in checked.env.items() if k in PLAN_ENV}
    return checked


async def run_plan_subprocess(plan: dict[str, Any], stop: asyncio.Event, *, grace_s: float = 1.0) -> int:
    """The daemon's part runner: `python -m runtime.worker PLAN` until it exits or `stop` (SIGTERM, then SIGKILL).

    The plan goes to a private (0700) directory; only `PLAN_ENV` variables of the launcher pass;
    the worker finds CURVE keys in this host's key directory and stops by itself if this daemon dies.
    A non-zero exit raises `PartFailed` with the last lines of the worker's log.
    """
    checked = _check_plan(plan)
    run_dir = secure_ipc_dir(prefix="edgeloop-part-")
    checked.run_dir = str(run_dir)
    path = run_dir / "plan.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(checked.to_json())
    env = {**os.environ, "EDGELOOP_PARENT_PID": str(os.getpid()), KEYS_DIR_ENV: str(default_keys_dir())}
    env["PYTHONPATH"] = worker_pythonpath(env.get("PYTHONPATH", ""))
    proc = await asyncio.create_subprocess_exec(
        *WORKER_COMMAND,
        str(path),
        env=env,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=8)
    reader = asyncio.create_task(_forward(proc, tail))
    stopped = False
    try:
        waiter = asyncio.create_task(proc.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not waiter.done():
            stopped = True
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), grace_s)
            except TimeoutError:
                log.warning("worker %s ignored SIGTERM for %.1f s: killed", checked.agent, grace_s)
                proc.kill()
                await asyncio.wait_for(waiter, 5.0)
    finally:
        if proc.returncode is None:  # cancelled: never leave a worker behind
            proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, 2.0)
        for p in run_dir.iterdir():
            p.unlink(missing_ok=True)
        run_dir.rmdir()
    code = int(proc.returncode if proc.returncode is not None else -9)
    if code != 0 and not stopped:
        raise PartFailed(code, f"worker exited with code {code}: " + " | ".join(tail))
    return code


async def _forward(proc: asyncio.subprocess.Process, tail: collections.deque[str]) -> None:
    """Copy the worker's log to this daemon's stderr, keeping the last lines for the exit report."""
    if proc.stderr is None:
        return
    while line := await proc.stderr.readline():
        text = line.decode(errors="replace").rstrip()
        tail.append(text[-300:])
        print(text, file=sys.stderr, flush=True)
