"""A FleetClient in its own process, for last-will and hung-agent tests: prints READY once online.

Reads stdin lines: "hang" blocks the event loop (time.sleep, as a stuck node would), "quit" exits
gracefully; EOF also exits gracefully. The test SIGKILLs it to make the broker publish the will.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from runtime.fleet.client import FleetClient

__all__ = ["main"]


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("name")
    ap.add_argument("--fleet", default="default")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--heartbeat-s", type=float, default=1.0)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with FleetClient(
        args.url,
        args.name,
        args.fleet,
        username=args.username,
        password=args.password,
        heartbeat_s=args.heartbeat_s,
    ):
        print("READY", flush=True)
        while line := await reader.readline():
            if line.strip() == b"hang":
                time.sleep(60)  # a blocked event loop: the connection stays, heartbeats stop
            elif line.strip() == b"quit":
                break
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
