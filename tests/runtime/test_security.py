"""CURVE between hosts (allow-listed keys get through, unknown peers are refused) and private ipc dirs."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from runtime.errors import GraphError, TransportError
from runtime.security import (
    configure_curve_client,
    configure_curve_server,
    generate_keypair,
    ipc_endpoint,
    load_keypair,
    secure_ipc_dir,
)

_AUTH_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH


@dataclass
class Keys:
    server_public: Path
    server_secret: Path
    allowed: Path
    client_secret: Path
    intruder_secret: Path


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    sp, ss = generate_keypair(tmp_path / "server", "server")
    cp, cs = generate_keypair(tmp_path / "clients", "cam")
    _, bad = generate_keypair(tmp_path / "intruder", "cam")  # same name, different key
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(cp, allowed / cp.name)
    return Keys(sp, ss, allowed, cs, bad)


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    c = zmq.asyncio.Context()
    yield c
    c.destroy(linger=0)


async def _event(mon: zmq.asyncio.Socket, timeout_s: float = 5.0) -> int:
    msg = await asyncio.wait_for(recv_monitor_message(mon), timeout_s)  # type: ignore[arg-type]
    return int(msg["event"])


def test_secret_keys_are_private(keys: Keys) -> None:
    assert stat.S_IMODE(keys.server_secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.server_public.stat().st_mode) == 0o644
    assert not list(keys.server_secret.parent.glob(".keygen-*"))  # no temporary left behind
    os.chmod(keys.server_secret, 0o644)
    with pytest.raises(TransportError, match="chmod 600"):
        load_keypair(keys.server_secret)
    with pytest.raises(TransportError, match="only a public key"):
        load_keypair(keys.server_public)
    with pytest.raises(GraphError, match="plain file name"):
        generate_keypair(keys.allowed, "../evil")


async def test_curve_delivers_with_an_allowed_key_and_refuses_an_unknown_one(
    keys: Keys, ctx: zmq.asyncio.Context
) -> None:
    pull = ctx.socket(zmq.PULL)
    auth = configure_curve_server(pull, keys.server_secret, keys.allowed)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    mon = pull.get_monitor_socket(_AUTH_EVENTS)
    clients: list[zmq.asyncio.Socket] = []
    try:
        intruder = ctx.socket(zmq.PUSH)
        clients.append(intruder)
        configure_curve_client(intruder, keys.intruder_secret, keys.server_public)
        intruder.connect(f"tcp://127.0.0.1:{port}")
        await intruder.send(b"let me in")
        assert await _event(mon) == zmq.EVENT_HANDSHAKE_FAILED_AUTH  # ZAP said no: not a timeout guess
        intruder.close(linger=0)  # else it retries every 100 ms and its refusals interleave below
        while await mon.poll(0):
            assert await _event(mon) == zmq.EVENT_HANDSHAKE_FAILED_AUTH

        good = ctx.socket(zmq.PUSH)
        clients.append(good)
        configure_curve_client(good, keys.client_secret, keys.server_public)
        good.connect(f"tcp://127.0.0.1:{port}")
        for i in range(5):
            await good.send(b"frame %d" % i)
        assert await _event(mon) == zmq.EVENT_HANDSHAKE_SUCCEEDED
        got = [await asyncio.wait_for(pull.recv(), 5.0) for _ in range(5)]
        assert got == [b"frame %d" % i for i in range(5)]  # nothing from the intruder slipped in
        assert await pull.poll(50) == 0

        # Revoking a key: remove it from the allow-list, reload, and a new connection is refused.
        for f in keys.allowed.iterdir():
            f.unlink()
        assert auth.reload() == 0
        again = ctx.socket(zmq.PUSH)
        clients.append(again)
        configure_curve_client(again, keys.client_secret, keys.server_public)
        again.connect(f"tcp://127.0.0.1:{port}")
        assert await _event(mon) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    finally:  # sockets first: a CURVE handshake waiting on a stopped ZAP handler would block term()
        for c in clients:
            c.close(linger=0)
        pull.disable_monitor()
        mon.close(linger=0)
        pull.close(linger=0)
        auth.close()


async def test_empty_allow_list_is_an_error_not_an_open_door(
    keys: Keys, ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    sock = ctx.socket(zmq.PULL)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TransportError, match="no client public keys"):
        configure_curve_server(sock, keys.server_secret, tmp_path / "empty")


def test_ipc_dir_is_private_and_paths_are_checked(tmp_path: Path) -> None:
    d = secure_ipc_dir(tmp_path)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert ipc_endpoint(d, "cam") == f"ipc://{d}/cam.sock"
    with pytest.raises(TransportError, match="107-byte"):
        ipc_endpoint(tmp_path / ("x" * 120), "cam")
