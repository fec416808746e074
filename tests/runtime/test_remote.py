"""Agents on two "hosts" (127.0.0.1 and 127.0.0.2): deploy through the embedded broker to an `edgeloop agent`
daemon, CURVE on every tcp link, restarts through the broker after kill -9, and unknown peers refused."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from remote_helpers import ENV, Daemon, make_keys, wait_for
from zmq.utils.monitor import recv_monitor_message

from runtime.graph import load_graph
from runtime.launcher import Launcher
from runtime.security import load_public_key
from runtime.wiring import can_bind, free_tcp_port

pytestmark = pytest.mark.skipif(
    not can_bind("127.0.0.2"),
    reason="127.0.0.2 is not a local address here (Linux routes all of 127/8 to lo)",
)


def _launcher(text: str, keys: Path, port: int, **kw: Any) -> Launcher:
    return Launcher(load_graph("remote.yaml", text=text), env=ENV, keys_dir=keys, broker_port=port, **kw)


async def test_graph_across_two_hosts_is_lossless_over_curve(tmp_path: Path) -> None:
    keys_here, keys_b = make_keys(tmp_path)
    port = free_tcp_port()
    daemon = await Daemon.start(tmp_path, port, "b", keys_b)
    try:
        launcher = _launcher(
            """
name: twohosts
agents:
  a: {}
  b: {host: 127.0.0.2}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 3000}}
  - id: relay
    uses: transform.relay
    agent: b
    inputs: {in: {from: src/out, policy: backpressure, queue: 64}}
  - id: sink
    uses: sink.counter
    agent: a
    inputs: {in: {from: relay/out, policy: backpressure, queue: 64}}
""",
            keys_here,
            port,
        )
        result = await asyncio.wait_for(launcher.run(None), 90)
    finally:
        await daemon.stop()
    assert result.exit_code == 0, (result.failures, daemon.log())
    c = result.view["nodes"]["sink"]["counters"]
    assert c["received"] == 3000 and c["last"] == 2999
    assert c.get("out_of_order", 0) == 0 and c.get("skipped", 0) == 0
    assert all(e["dropped"] == 0 for e in result.view["edges"].values())
    agents = result.view["agents"]
    # The data went over tcp between the two addresses, CURVE-encrypted at both ends.
    assert (
        agents["b"]["transport"]["inbox"].startswith("tcp://127.0.0.2:") and agents["b"]["transport"]["curve"]
    )
    assert (
        agents["a"]["transport"]["inbox"].startswith("tcp://127.0.0.1:") and agents["a"]["transport"]["curve"]
    )
    assert agents["b"]["pid"] != agents["a"]["pid"] and result.restarts == {"a": 0, "b": 0}
    assert launcher.wiring.control.startswith("tcp://127.0.0.1:")
    assert launcher.remote is not None and launcher.remote.telemetry_sent >= 1  # fleet telemetry went out


async def _handshake(
    endpoint: str, server_public: bytes, client: tuple[bytes, bytes] | None, kind: int = zmq.PUSH
) -> int:
    """Connect a PUSH (DEALER for the control ROUTER) to `endpoint` (CURVE with `client` keys, or plain) and
    return how its handshake ended."""
    ctx = zmq.asyncio.Context()
    push = ctx.socket(kind)
    push.setsockopt(zmq.LINGER, 0)
    if client is not None:
        push.curve_publickey, push.curve_secretkey = client
        push.curve_serverkey = server_public
    events = (
        zmq.EVENT_HANDSHAKE_SUCCEEDED
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        | zmq.EVENT_DISCONNECTED
    )
    mon = push.get_monitor_socket(events)
    try:
        push.connect(endpoint)
        await push.send_multipart([b"src/out", b"\x93\x00\x00\x00"])  # queued until a handshake succeeds
        msg = await asyncio.wait_for(recv_monitor_message(mon), 15)  # type: ignore[arg-type]
        return int(msg["event"])
    finally:
        push.disable_monitor()
        mon.close(linger=0)
        push.close(linger=0)
        ctx.term()


async def test_remote_kill_9_and_lost_daemon_recover_and_strangers_are_refused(tmp_path: Path) -> None:
    keys_here, keys_b = make_keys(tmp_path)
    port = free_tcp_port()
    daemon = await Daemon.start(tmp_path, port, "b", keys_b)
    launcher = _launcher(
        """
name: recover
agents:
  a: {}
  b: {host: 127.0.0.2, restart: {policy: on-failure, max_restarts: 5, backoff_ms: 50}}
nodes:
  - {id: src, uses: source.counter, agent: a, params: {count: 1000000, rate_hz: 300}}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}, params: {check_order: false}}
""",
        keys_here,
        port,
    )
    view: dict[str, Any] = {}
    launcher.on_stats = view.update
    task = asyncio.create_task(launcher.run(None))

    def flowing(inc: int) -> Callable[[], bool]:
        def check() -> bool:
            b = view.get("agents", {}).get("b", {})
            return bool(
                b.get("incarnation") == inc and b["nodes"]["sink"]["counters"].get("received", 0) > 30
            )

        return check

    try:
        await wait_for(flowing(0), 60, "messages at b")
        os.kill(int(view["agents"]["b"]["pid"]), signal.SIGKILL)  # the worker: its daemon reports the exit
        await wait_for(flowing(1), 30, "messages at b after its worker was killed")

        # (c) the data plane refuses a peer whose key is not allow-listed, and a plain (non-CURVE) one.
        stranger = zmq.curve_keypair()
        endpoint = launcher.wiring.inbox["b"]
        server = load_public_key(keys_here / "b.key")
        assert await _handshake(endpoint, server, stranger) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        assert await _handshake(endpoint, server, None) != zmq.EVENT_HANDSHAKE_SUCCEEDED
        assert (
            await _handshake(
                launcher.wiring.control, load_public_key(keys_here / "launcher.key"), stranger, zmq.DEALER
            )
            == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        )

        daemon.kill()  # the whole "host" b: its worker stops by itself, the broker sends the last will
        await wait_for(lambda: launcher.agents["b"].restarts == 2, 30, "the daemon loss to be noticed")
        daemon = await Daemon.start(tmp_path, port, "b", keys_b, log_name="daemon2.log")
        await wait_for(flowing(2), 60, "messages at b from the new daemon")
        malformed = view["agents"]["b"]["malformed"]
        launcher.stop_requested.set()
        result = await asyncio.wait_for(task, 30)
    finally:
        if not task.done():
            task.cancel()
        await daemon.stop()
    assert result.exit_code == 0, (result.failures, daemon.log())
    assert result.restarts["b"] == 2
    assert sum("exited unexpectedly" in f for f in result.failures) == 2, result.failures
    assert malformed == 0  # nothing of the strangers got through to the worker


async def test_missing_keys_are_named_before_anything_starts(tmp_path: Path) -> None:
    launcher = _launcher(
        """
name: nokeys
agents: {a: {}, b: {host: 127.0.0.2}}
nodes:
  - {id: src, uses: source.counter, agent: a}
  - {id: sink, uses: sink.counter, agent: b, inputs: {in: src/out}}
""",
        tmp_path / "empty",
        free_tcp_port(),
    )
    t0 = time.monotonic()
    with pytest.raises(Exception, match=r"edgeloop keys a --dir .*launcher.*copy every public NAME.key"):
        await asyncio.wait_for(launcher.run(None), 30)
    assert time.monotonic() - t0 < 30
    assert launcher.remote is None  # no broker was started for a run that could not start
