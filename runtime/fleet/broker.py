"""The embedded MQTT broker (amqtt, in-process or as a child process), so nothing is started by hand.

amqtt 0.12 is pure Python and speaks MQTT 3.1.1 only [SCIENCE 5.1, Yakifo/amqtt README]; it is
meant for one machine and development. It allows anonymous clients, so it binds loopback unless
told otherwise; production fleets use mosquitto with passwords and ACLs (docs/machines.md, "mosquitto for real fleets").

Two ways to run it:

- `async with EmbeddedBroker() as broker:` inside an event loop (tests, async launchers);
- `start_embedded_broker_process()` for a synchronous launcher: a child Python process (the same
  code as `edgeloop broker`) that prints its URL, returns a `BrokerProcess` handle with `.url` and
  `.stop()`, and exits by itself when the parent dies (it watches its stdin pipe), so a crashed
  launcher never leaves a broker behind.

The launcher passes the URL to workers in the environment variable `EDGELOOP_BROKER_URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..errors import GraphError, TransportError

__all__ = [
    "BROKER_URL_ENV",
    "EmbeddedBroker",
    "BrokerProcess",
    "start_embedded_broker_process",
    "add_broker_arguments",
    "serve_broker",
    "main",
]

#: Where the runtime puts the broker URL for workers and nodes (e.g. `mqtt.publish` without `url`).
BROKER_URL_ENV = "EDGELOOP_BROKER_URL"
_READY = "EDGELOOP_BROKER_URL="
# `python -m runtime.fleet.broker` would import this module twice (the package imports it first).
_CHILD_CODE = "import sys; from runtime.fleet.broker import main; sys.exit(main())"


def _check_host(host: str, allow_remote: bool) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise GraphError(
            f"embedded broker host {host!r} is not a loopback address; the embedded amqtt broker "
            "accepts anonymous clients, so binding it beyond loopback needs allow_remote=True "
            "(or use mosquitto with a password file and ACLs, see docs/machines.md)"
        )


class _SnapshotDict(dict[str, Any]):
    """amqtt 0.12.1 iterates its subscription table across awaits (in a new client's session set-up and
    in every broadcast), so another client's (un)subscribe raises "dictionary changed size during
    iteration": the new client's session never serves it, or a broadcast is lost [M: 16 agents
    connecting at once]. Iterating a snapshot keeps both going."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())


class EmbeddedBroker:
    """An amqtt broker on `host`, port `port` (0 = a free ephemeral port); `.url` once started.

    Example::

        async with EmbeddedBroker() as broker:
            async with FleetClient(broker.url, "cam1") as fc: ...
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False) -> None:
        _check_host(host, allow_remote)
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        if self._broker is None:
            raise TransportError("EmbeddedBroker.url is known only after start()")
        return f"mqtt://{self.host}:{self.port}"

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind and start serving; raises TransportError if the port is taken."""
        from amqtt.broker import Broker  # imported here: ~0.25 s, only when a broker is wanted
        from amqtt.errors import BrokerError

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only anonymous auth: no $SYS publisher task, no packet logging plugins.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        broker._subscriptions = _SnapshotDict(broker._subscriptions)
        try:
            await broker.start()
        except BrokerError as exc:
            raise TransportError(
                f"embedded MQTT broker could not bind {self.host}:{self.port}: {exc}"
            ) from exc
        self.port = broker._servers["default"].instance.sockets[0].getsockname()[1]
        self._broker = broker

    async def stop(self, timeout_s: float = 1.0) -> None:
        """Disconnect every client and close the listener (bounded by `timeout_s`)."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            await asyncio.wait_for(broker.shutdown(), timeout_s)
        except TimeoutError:
            # A wedged client handler: close the listener at least, so the port is free.
            for server in broker._servers.values():
                with contextlib.suppress(Exception):
                    server.instance.close()


class BrokerProcess:
    """Handle on a broker child process: `.url`, `.pid`, `.stop()`; also a context manager."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout_s: float = 1.0) -> int:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        return int(self.proc.returncode)

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_embedded_broker_process(
    host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False, timeout_s: float = 10.0
) -> BrokerProcess:
    """Start the embedded broker as a child process and return once it accepts connections."""
    _check_host(host, allow_remote)
    cmd = [
        sys.executable,
        "-c",
        _CHILD_CODE,
        "--host",
        host,
        "--port",
        str(port),
        "--watch-stdin",
    ]
    if allow_remote:
        cmd.append("--allow-remote")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout is None:  # cannot happen: we asked for a pipe (keeps mypy exact without assert)
        raise TransportError("embedded broker process has no stdout pipe")
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0 and sel.select(left):
            line = proc.stdout.readline()
            if not line:
                break  # child exited
            if line.startswith(_READY):
                return BrokerProcess(proc, line[len(_READY) :].strip())
    BrokerProcess(proc, "").stop()
    raise TransportError(
        f"embedded broker process did not start within {timeout_s:g} s (exit code {proc.returncode}); "
        f"run `{' '.join(cmd)}` to see why"
    )


def _on_stdin(stop: asyncio.Event) -> None:
    if not os.read(sys.stdin.fileno(), 4096):
        stop.set()


async def _serve(host: str, port: int, allow_remote: bool, watch_stdin: bool) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if watch_stdin:  # the parent holds our stdin; EOF means it is gone (or closed it): shut down
        loop.add_reader(sys.stdin.fileno(), _on_stdin, stop)
        # Embedded in a launcher: amqtt's warnings about clients that come and go are noise in its log.
        logging.getLogger("amqtt").setLevel(logging.ERROR)
    async with EmbeddedBroker(host, port, allow_remote=allow_remote) as broker:
        print(f"{_READY}{broker.url}", flush=True)
        await stop.wait()
        if watch_stdin:
            loop.remove_reader(sys.stdin.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or stdin EOF with --watch-stdin); prints `EDGELOOP_BROKER_URL=...`."""
    ap = argparse.ArgumentParser(prog="edgeloop broker", description=(__doc__ or "").splitlines()[0])
    add_broker_arguments(ap)
    args = ap.parse_args(argv)
    return serve_broker(args)


def add_broker_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of `edgeloop broker` (shared with the child-process entry point)."""
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host (anonymous!)")
    ap.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches EOF (parent gone)")


def serve_broker(args: argparse.Namespace) -> int:
    """Run the broker described by parsed `add_broker_arguments` options; returns the exit code."""
    try:
        return asyncio.run(_serve(args.host, args.port, args.allow_remote, args.watch_stdin))
    except (GraphError, TransportError) as exc:
        print(f"edgeloop broker: {exc}", file=sys.stderr)
        return 1
