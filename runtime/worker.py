"""`python -m runtime.worker [--standby] PLAN.json`: one agent's process — its plan, logging, the control
loop with the launcher, and warm standby."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import NoReturn

import zmq
import zmq.asyncio

from .agent import AgentWorker
from .control import (
    MAX_CONTROL_BYTES,
    Bound,
    Bye,
    Connect,
    Done,
    Go,
    LauncherMessage,
    NodeFailed,
    Ready,
    Start,
    Started,
    Stats,
    Stop,
    WorkerMessage,
    decode_from_launcher,
    encode,
)
from .errors import CodecError, EdgeloopError, TransportError
from .graph import Graph, load_graph
from .plan import Activation, WorkerPlan, standby_ready_path
from .security import configure_curve_client
from .wiring import LAUNCHER_KEY, Wiring

__all__ = ["main", "serve", "setup_logging"]

log = logging.getLogger("edgeloop.worker")
_HEARTBEAT_S = 0.5
_POLL_MS = 100  # the control loop's longest wait: how soon a vanished launcher is noticed
_process_is_ours = False  # set by main(): this process exists only to run the worker


class _NodeFilter(logging.Filter):
    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = getattr(record, "node", "-")  # set by a node's LoggerAdapter, absent elsewhere
        record.agent = self.agent
        return True


def setup_logging(agent: str) -> None:
    """Log to stderr as `time level [agent/node] message`, at `$EDGELOOP_LOG` (default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s [%(agent)s/%(node)s] %(message)s", "%H:%M:%S")
    )
    handler.addFilter(_NodeFilter(agent))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("EDGELOOP_LOG", "INFO").upper())


async def serve(plan: WorkerPlan, graph: Graph | None = None) -> int:
    """Run the plan's agent with the launcher's control channel until told to stop; the exit code.

    0: stopped; 1: a node failed; 3: the worker could not run (a missing key, a bind, a peer that
    never connected)."""
    graph = graph or load_graph(plan.graph_file, plan.overrides, text=plan.graph_text)
    wiring = Wiring.from_dict(plan.wiring)
    zctx = zmq.asyncio.Context()
    try:
        worker = AgentWorker(
            graph, plan.agent, wiring, incarnation=plan.incarnation, zctx=zctx, backend_override=plan.backend
        )
    except EdgeloopError as exc:  # a limit set wrong in the environment
        log.error("%s", exc)
        zctx.term()
        return 3
    ctl = zctx.socket(zmq.DEALER)
    ctl.setsockopt(zmq.LINGER, 200)
    ctl.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_BYTES)
    ctl.setsockopt(zmq.IDENTITY, plan.identity)  # proof of the agent's run secret (`plan.routing_id`)
    if wiring.control.startswith("tcp://"):
        # Across hosts: ZMTP heartbeats notice a dead link; CURVE with the launcher's public key.
        ctl.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        ctl.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        if wiring.curve:
            try:
                configure_curve_client(
                    ctl,
                    worker.sockets.curve_key(plan.agent, secret=True),
                    worker.sockets.curve_key(LAUNCHER_KEY),
                )
            except TransportError as exc:
                log.error("%s", exc)
                ctl.close(linger=0)
                zctx.term()
                return 3
    ctl.connect(wiring.control)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    agent, inc = plan.agent, plan.incarnation

    async def send(msg: WorkerMessage) -> None:
        await ctl.send(encode(msg))

    async def node_failed(node: str, hook: str, error: str) -> None:
        await send(NodeFailed(agent, inc, node, hook, error))

    worker.on_node_failed = node_failed
    exit_code = 0
    try:
        worker.bind_inboxes()
        await send(Bound(agent, inc, os.getpid(), worker.rebound))
        # Wait for `connect` (every agent has bound), then the ready barrier, then `start`, then `go`.
        started = False
        heartbeat_at = time.monotonic()
        parent = int(os.environ.get("EDGELOOP_PARENT_PID", "0"))
        while not stop_requested.is_set():
            if parent and os.getppid() != parent:
                log.error("launcher (pid %d) is gone: stopping", parent)
                break
            timeout_ms = max(0, int((heartbeat_at - time.monotonic()) * 1000))
            if await ctl.poll(min(timeout_ms, _POLL_MS)):
                match _command(await ctl.recv_multipart()):
                    case Connect(wiring=moved):
                        worker.connect_routes(moved)
                        await worker.wait_connected()
                        await send(Ready(agent, inc))
                    case Start() if not started:
                        started = True
                        await worker.start_nodes()
                        await send(Started(agent, inc))
                    case Go():
                        worker.go()
                        # What start-up made (modules, graph, models) lives on: keep it out of the
                        # collector's generations, so its pauses on the data path stay short.
                        gc.freeze()
                    case Stop():
                        break
            if time.monotonic() >= heartbeat_at:
                heartbeat_at = time.monotonic() + _HEARTBEAT_S
                await send(Stats(agent, inc, worker.snapshot()))
            if started and worker.done_event.is_set():
                await send(Done(agent, inc))
                worker.done_event.clear()
    except EdgeloopError as exc:
        log.error("%s", exc)
        exit_code = 3
    finally:
        await worker.stop()
        if worker.failed_nodes:
            exit_code = exit_code or 1
        try:
            await send(Bye(agent, inc, exit_code, worker.snapshot()))
        except zmq.ZMQError:
            pass
        worker.close()
        ctl.close(linger=200)
        zctx.term()
        if _process_is_ours:
            # A worker process: everything is said and closed. Exit now rather than through asyncio's
            # teardown, which waits for every thread a node left in the default executor.
            _exit_now(exit_code)
    return exit_code


def _command(frames: list[bytes]) -> LauncherMessage | None:
    """The launcher's command in `frames`, or None (logged) for anything else."""
    try:
        if len(frames) != 1:
            raise CodecError(f"a control message is one frame, not {len(frames)}")
        return decode_from_launcher(frames[0])
    except CodecError as exc:
        log.warning("ignored a control message: %s", exc)
        return None


def _exit_now(code: int) -> NoReturn:
    """Skip the interpreter's teardown (seconds with torch loaded): the launcher's stop grace then
    measures the graph, not atexit handlers."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _wait_for_activation(plan: WorkerPlan, plan_path: str) -> tuple[WorkerPlan, Graph] | None:
    """A standby worker: load everything a start needs, say so (`standby_ready_path`), then wait on stdin
    for the launcher's `Activation` (one JSON line); end of input means "not needed"."""
    graph = load_graph(plan.graph_file, plan.overrides, text=plan.graph_text)  # imports every node class
    standby_ready_path(plan_path).touch()
    line = sys.stdin.readline()
    if not line.strip():
        return None
    word = Activation.from_line(line)
    plan.incarnation, plan.wiring = word.incarnation, word.wiring
    return plan, graph


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.worker [--standby] PLAN_JSON_FILE`: run one agent until told to stop.

    With `--standby`, start as a warm spare that becomes the agent when the launcher says so."""
    args = sys.argv[1:] if argv is None else argv
    standby = args[0] == "--standby"
    with open(args[-1], encoding="utf-8") as f:
        plan = WorkerPlan.from_json(f.read())
    os.environ.update(plan.env)
    setup_logging(plan.agent)
    parent = int(os.environ.get("EDGELOOP_PARENT_PID", "0"))
    if parent:
        # A node that blocks the event loop must not outlive its launcher: watch from a thread too.
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="parent-watch").start()
    global _process_is_ours
    _process_is_ours = True
    graph = None
    if standby:
        activated = _wait_for_activation(plan, args[-1])
        if activated is None:
            os._exit(0)
        plan, graph = activated
    _exit_now(asyncio.run(serve(plan, graph)))


if __name__ == "__main__":
    sys.exit(main())
