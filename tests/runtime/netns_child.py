"""Child processes for the namespace test: a CURVE PULL server, a CURVE PUSH client, a fleet observer."""

from __future__ import annotations

import asyncio
import sys

import zmq
import zmq.asyncio

from runtime.fleet.client import FleetClient
from runtime.security import configure_curve_client, configure_curve_server

__all__ = ["main"]


async def pull(addr: str, n: int, server_secret: str, allowed: str) -> int:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PULL)
    auth = configure_curve_server(sock, server_secret, allowed)
    port = sock.bind_to_random_port(f"tcp://{addr}")
    print(f"READY {port}", flush=True)
    got = [int(await asyncio.wait_for(sock.recv(), 10.0)) for _ in range(n)]
    print("GOT " + ",".join(map(str, got)), flush=True)
    sock.close(linger=0)
    auth.close()
    ctx.term()
    return 0


async def push(addr: str, port: int, n: int, client_secret: str, server_public: str) -> int:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.sndhwm = n + 10
    configure_curve_client(sock, client_secret, server_public)
    sock.connect(f"tcp://{addr}:{port}")
    for i in range(n):
        await asyncio.wait_for(sock.send(b"%d" % i), 10.0)
    sock.close(linger=5000)  # flush before exit, bounded
    ctx.term()
    return 0


async def observe(url: str, agent: str) -> int:
    async with FleetClient(url, "observer", heartbeat_s=0.2) as fc:
        await fc.wait_for_agent(agent, "online", timeout_s=15.0)
        print("ONLINE", flush=True)
        info = await fc.wait_for_agent(agent, "offline", timeout_s=15.0)
        print(f"OFFLINE {info.reason}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode, *a = argv
    if mode == "pull":
        return asyncio.run(pull(a[0], int(a[1]), a[2], a[3]))
    if mode == "push":
        return asyncio.run(push(a[0], int(a[1]), int(a[2]), a[3], a[4]))
    if mode == "observe":
        return asyncio.run(observe(a[0], a[1]))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
