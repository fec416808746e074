"""CLI subcommands of the control plane: `edgeloop agent` and `edgeloop keys`, for runtime/cli.py to hook in."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

from ..errors import EdgeloopError
from ..security import KEYS_DIR_ENV, default_keys_dir
from .agent import AgentDaemon, RunPart, RunPlan
from .broker import BROKER_URL_ENV, add_broker_arguments, serve_broker

__all__ = [
    "PASSWORD_ENV",
    "KEYS_DIR_ENV",
    "default_keys_dir",
    "register_agent_command",
    "register_keys_command",
    "register_broker_command",
]

PASSWORD_ENV = "EDGELOOP_BROKER_PASSWORD"


def register_agent_command(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    run_part: RunPart | None = None,
    run_plan: RunPlan | None = None,
) -> None:
    """Add `edgeloop agent`; `run_part` / `run_plan` run a deployed part (both None: deploys are refused)."""
    ap = subparsers.add_parser(
        "agent",
        help="join a fleet over MQTT and run the graph parts deployed to this host",
        description="Connect to the broker, announce this agent (retained status + last will), "
        "serve deploy/stop commands, publish heartbeats and telemetry; SIGTERM stops it cleanly.",
    )
    ap.add_argument(
        "--broker",
        default=os.environ.get(BROKER_URL_ENV),
        help=f"broker URL mqtt://HOST[:PORT] or mqtts://... (default: ${BROKER_URL_ENV})",
    )
    ap.add_argument(
        "--name", default=socket.gethostname().split(".")[0], help="agent name (default: host name)"
    )
    ap.add_argument("--fleet", default="default", help="fleet name (topic prefix edgeloop/FLEET/)")
    ap.add_argument("--username", default=None, help="broker username (default: the agent name)")
    ap.add_argument(
        "--password-env",
        default=PASSWORD_ENV,
        metavar="VAR",
        help=f"environment variable holding the broker password (default: {PASSWORD_ENV})",
    )
    ap.add_argument(
        "--tls-ca", default=None, metavar="FILE", help="CA file for mqtts:// brokers with a private CA"
    )
    ap.add_argument("--heartbeat-s", type=float, default=1.0, help="heartbeat period (default 1 s)")
    ap.add_argument("--telemetry-s", type=float, default=1.0, help="telemetry period (default 1 s)")
    ap.add_argument(
        "--connect-timeout-s",
        type=float,
        default=10.0,
        help="give up if not connected (default 10 s; 0: wait for the broker forever)",
    )
    ap.add_argument(
        "--reconnect-max-s", type=float, default=2.0, help="longest wait between connection attempts (2 s)"
    )
    ap.add_argument(
        "--keys",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"CURVE key directory for parts that talk to other hosts (default: ${KEYS_DIR_ENV} "
        "or ~/.config/edgeloop/keys): this agent's NAME.key_secret and every peer's public NAME.key",
    )
    ap.add_argument(
        "--allow-from",
        default="launcher",
        metavar="NAMES",
        help="comma-separated fleet members whose deploy/stop this agent obeys (default: launcher, the name "
        "`edgeloop run` uses; '*' for any)",
    )
    ap.add_argument("--anonymous", action="store_true", help="connect without username (embedded broker)")
    ap.set_defaults(func=_agent_handler, run_part=run_part, run_plan=run_plan)


def _agent_handler(args: argparse.Namespace) -> int:
    if not args.broker:
        print(
            f"edgeloop agent: no broker: pass --broker mqtt://HOST:PORT or set {BROKER_URL_ENV}",
            file=sys.stderr,
        )
        return 2
    password = os.environ.get(args.password_env) if args.password_env else None
    username = None if args.anonymous else (args.username or (args.name if password else None))
    tls = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.keys is not None:  # the part runner hands it to the worker processes it starts
        os.environ[KEYS_DIR_ENV] = str(args.keys.expanduser().resolve())
    os.environ.setdefault(BROKER_URL_ENV, args.broker)  # for mqtt.* nodes of deployed parts
    try:
        daemon = AgentDaemon(
            args.broker,
            args.name,
            run_part=args.run_part,
            run_plan=getattr(args, "run_plan", None),
            fleet=args.fleet,
            username=username,
            password=password,
            tls=tls,
            heartbeat_s=args.heartbeat_s,
            telemetry_period_s=args.telemetry_s,
            connect_timeout_s=args.connect_timeout_s if args.connect_timeout_s > 0 else 1e9,
            reconnect_max_s=args.reconnect_max_s,
            deployers=None
            if args.allow_from.strip() == "*"
            else [n.strip() for n in args.allow_from.split(",")],
        )
        return asyncio.run(_serve(daemon))
    except EdgeloopError as exc:
        print(f"edgeloop agent: {exc}", file=sys.stderr)
        return 1


async def _serve(daemon: AgentDaemon) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await daemon.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def register_keys_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `edgeloop keys NAME [--dir DIR] [--force]`: make a CURVE key pair."""
    ap = subparsers.add_parser(
        "keys",
        help="make a CURVE key pair for encrypted ZeroMQ links between hosts",
        description="Writes NAME.key (public: copy it to peers' allow-lists) and NAME.key_secret "
        "(mode 0600: never copy it off this host).",
    )
    ap.add_argument("name", help="key pair name, e.g. the agent or host name")
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"directory (default: ${KEYS_DIR_ENV} or ~/.config/edgeloop/keys)",
    )
    ap.add_argument("--force", action="store_true", help="replace an existing pair of that name")
    ap.set_defaults(func=_keys_handler)


def _keys_handler(args: argparse.Namespace) -> int:
    from ..security import generate_keypair, load_public_key

    directory = args.dir or default_keys_dir()
    try:
        public, secret = generate_keypair(directory, args.name, overwrite=args.force)
    except EdgeloopError as exc:
        print(f"edgeloop keys: {exc}", file=sys.stderr)
        return 1
    print(f"public key  {public}  ({load_public_key(public).decode()})")
    print(f"secret key  {secret}  (mode 0600, keep it on this host)")
    print(f"allow this client on a server: copy {public.name} into the server's allowed-clients directory")
    return 0


def register_broker_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `edgeloop broker [--host H] [--port P] [--allow-remote]`: run the embedded amqtt broker."""
    ap = subparsers.add_parser(
        "broker",
        help="run the embedded MQTT broker (amqtt; loopback, anonymous: for one machine or a lab)",
        description="Prints EDGELOOP_BROKER_URL=mqtt://HOST:PORT once listening; stops on SIGTERM/Ctrl-C. "
        "For fleets across machines use mosquitto with passwords and ACLs.",
    )
    add_broker_arguments(ap)
    ap.set_defaults(func=serve_broker)
