"""One node inside a worker: its input queues, arrival-order dispatch, timers, timeouts, supervision of its hooks."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, Protocol

from .clock import Clock, SimClock, WallClock
from .context import Emitter, NodeContext
from .errors import EdgeloopError
from .graph import TIMER_RE, InputSpec, NodeSpec, RestartSpec
from .message import Message
from .node import BackendSetting, Node
from .qos import EdgeStats, InputQueue
from .supervision import NodeState, RestartBudget, failure_file, log_hook_failure
from .tracking import FlowTracker

__all__ = ["NodeRunner", "NodeHost"]

_order = itertools.count()
_YIELD_EVERY = 32  # messages a node may handle before its loop gives the others a turn
_HOLD_S = 0.002  # or this long
_ENDED = (NodeState.FAILED, NodeState.FINISHED)
#: What ends a hook the ordinary way (cancellation, interpreter exit): passed on. Any other
#: BaseException, such as a native library's panic (pyo3's PanicException), is a node failure.
_PASS_ON = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


def _ns(ms: float) -> int:
    return int(round(ms * 1e6))


class NodeHost(Emitter, Protocol):
    """What a runner needs from the worker that owns it (`AgentWorker`, or a test's fake): `emit`, and
    word of its node's end."""

    async def node_finished(self, runner: NodeRunner) -> None:
        """The node ended (inputs closed, or a source returned): send end of stream on its outputs."""
        ...

    async def node_failed(self, runner: NodeRunner) -> None:
        """The node failed beyond its restart policy (`runner.last_error` says why)."""
        ...


class NodeRunner:
    """Runs one node's hooks in arrival order across its inputs; applies its restart policy.

    `stop_event` is the worker's (set at stop); `metrics` turns latency bookkeeping on (wall clock
    only); `whole_graph` says every node of the graph runs in this process, so input timeouts may count
    simulated time; `backend_override` is handed to the node's context.
    """

    def __init__(
        self,
        host: NodeHost,
        spec: NodeSpec,
        cls: type[Node],
        params: Any,
        restart: RestartSpec,
        clock: Clock,
        *,
        stop_event: asyncio.Event,
        metrics: bool = True,
        whole_graph: bool = False,
        backend_override: BackendSetting | None = None,
    ) -> None:
        self.host = host
        self.spec = spec
        self.node_id = spec.id
        self.cls = cls
        self.params = params
        self.restart = restart
        self.clock = clock
        self.stop_event = stop_event
        self.node: Node = cls()
        self.ctx = NodeContext(host, spec.id, params, clock, stop_event, backend_override)
        self.queues: dict[str, InputQueue] = {}
        self.stats: dict[str, EdgeStats] = {}
        self.timers: dict[str, float] = {}  # port -> period (s)
        for port in spec.inputs:
            ispec: InputSpec = spec.input_spec(port)
            st = EdgeStats(f"{ispec.from_} -> {spec.id}/{port}")
            self.stats[port] = st
            self.queues[port] = InputQueue(ispec, st)
            m = TIMER_RE.match(ispec.from_)
            if m:
                n = float(m.group(2))
                self.timers[port] = 1.0 / n if m.group(1) == "hz" else n / 1000.0
        self.wake = asyncio.Event()
        #: Input timeouts count simulated time when the whole graph runs in this process on a SimClock
        #: (deterministic); otherwise wall time (each process's simulated clock runs on its own).
        self._sim_timeouts = isinstance(clock, SimClock) and whole_graph
        self.state = NodeState.CREATED
        self.restarts = 0
        self.failures = 0
        self.last_error, self.failed_hook = "", ""  # why and where (the hook) it last failed
        self._budget = RestartBudget(restart)
        self._last_arrival: dict[str, int] = {}  # ns on the timeout clock (`_timeout_now`)
        self._timed_out: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self.busy_s = 0.0
        #: Latency metrics on/off (EDGELOOP_METRICS=0 turns them off, to measure their cost). Under the
        #: simulated clock, stamps are simulated times of separate processes: no latency is measured.
        self.metrics = metrics and isinstance(clock, WallClock)
        #: Set by the worker on leaf nodes (no outgoing edges): they report sensor-to-action latency.
        self.tracker: FlowTracker | None = None

    # ----- delivery (called by the worker) -----
    async def deliver(self, port: str, msg: Message, *, blocking: bool) -> None:
        if blocking and self.queues[port].policy == "backpressure" and self.state not in _ENDED:
            await self.queues[port].wait_space()
        self.deliver_nowait(port, msg)

    def deliver_nowait(self, port: str, msg: Message) -> None:
        """Queue `msg` now: lossy inputs drop per policy; a backpressure input must have room (`wait_space`)."""
        q = self.queues[port]
        if self.state in _ENDED:
            q.stats.dropped_failed += 1
            return
        q.put_nowait(next(_order), msg)
        self.wake.set()

    def close_input(self, port: str) -> None:
        """The upstream finished. An input with `timeout_ms` is then stale at once (its deadline is now)."""
        q = self.queues[port]
        q.eos = True
        q.stats.closed = True
        if q.spec.timeout_ms and port in self._last_arrival:
            self._last_arrival[port] = self._timeout_now() - _ns(q.spec.timeout_ms)
        self.wake.set()

    # ----- lifecycle -----
    async def start(self) -> None:
        """Setup, then start the input loop. Timers and `run` wait for `go` (all agents started).

        A failing setup is handled by the restart policy; a node that is not restarted has failed."""
        try:
            await self._setup()
        except _PASS_ON:
            raise
        except BaseException as exc:
            if not await self._on_failure("setup", exc):
                return
        self.state = NodeState.RUNNING
        self._tasks.append(asyncio.create_task(self._input_loop(), name=f"{self.node_id}:inputs"))

    def go(self) -> None:
        """Start timers and, for sources, `run`: every node of every agent is set up by now."""
        if self.state is not NodeState.RUNNING:
            return
        for port, period in self.timers.items():
            self._tasks.append(asyncio.create_task(self._timer(port, period), name=f"{self.node_id}:{port}"))
        if self.cls.is_source():
            self._tasks.append(asyncio.create_task(self._run_source(), name=f"{self.node_id}:run"))

    async def _setup(self) -> None:
        await self.node.setup(self.ctx)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await asyncio.wait_for(self.node.teardown(), timeout=0.5)
        except _PASS_ON:
            raise
        except EdgeloopError as exc:  # the node's own word that work was lost (a recording cut short)
            if self.state is not NodeState.FAILED:
                self._book("teardown", exc)
                await self._give_up()
        except BaseException as exc:  # teardown must not stop the others' teardown
            self.ctx.log.warning("teardown failed: %s", exc)

    def _data_inputs(self) -> list[str]:
        return [p for p in self.queues if p not in self.timers]

    def _inputs_closed(self) -> bool:
        data = self._data_inputs()
        # Timers never close, so a node fed by a timer runs until the graph stops.
        return (
            bool(data)
            and not self.timers
            and all(self.queues[p].eos and not len(self.queues[p]) for p in data)
        )

    async def _finish(self) -> None:
        if self.state is NodeState.RUNNING:
            self.state = NodeState.FINISHED
            await self.host.node_finished(self)

    async def _input_loop(self) -> None:
        held, held_since = 0, time.perf_counter()  # messages handled since this loop last gave way
        while True:
            timeout = self._next_timeout()
            if timeout is not None and timeout <= 0:
                await self._fire_timeouts()
            port = self._next_port()
            if port is None:
                if self._inputs_closed() and not self.cls.is_source():
                    await self._finish()
                    return
                self.wake.clear()
                timeout = self._next_timeout()
                if timeout is None:
                    await self.wake.wait()
                elif not await self._wait_wake(max(0.0, timeout)):
                    await self._fire_timeouts()
                held, held_since = 0, time.perf_counter()  # it waited: the loop was free meanwhile
                continue
            q = self.queues[port]
            msg = q.pop()
            q.stats.received += 1
            now = time.time_ns() if self.metrics else 0
            if q.spec.timeout_ms:
                # After the last message of an ended upstream the input is stale at once.
                self._last_arrival[port] = self._timeout_now() - (
                    _ns(q.spec.timeout_ms) if q.eos and not len(q) else 0
                )
                self._timed_out.discard(port)
            t0 = time.perf_counter()
            try:
                await self.node.on_input(port, msg)
            except _PASS_ON:
                raise
            except BaseException as exc:
                if not await self._on_failure("on_input", exc):
                    return
            finally:
                self.busy_s += time.perf_counter() - t0
                if now:  # bookkeeping after the node ran, so it never delays a message
                    q.stats.latency.add(now - msg.t_emit_ns)
                    q.stats.sense_latency.add(now - msg.t_sense_ns)
                    if self.tracker is not None and port not in self.timers:
                        self.tracker.observe(
                            msg.origin or msg.topic, self.node_id, port, now - msg.t_sense_ns
                        )
            # A hook that computes without awaiting never gives the loop back while its queue has
            # messages: the agent's other nodes, its inbox readers and its control channel (stop!)
            # would wait for the whole backlog. Give the loop a turn once the node has held it a while.
            held += 1
            if held >= _YIELD_EVERY or time.perf_counter() - held_since > _HOLD_S:
                await asyncio.sleep(0)
                held, held_since = 0, time.perf_counter()

    def _next_port(self) -> str | None:
        best, best_order = None, None
        for port, q in self.queues.items():
            o = q.head_order()
            if o is not None and (best_order is None or o < best_order):
                best, best_order = port, o
        return best

    def _timeout_now(self) -> int:
        return self.clock.now_ns() if self._sim_timeouts else time.monotonic_ns()

    async def _wait_wake(self, timeout_s: float) -> bool:
        """Wait for input or `timeout_s` (on the clock input timeouts count); False if it timed out."""
        if not self._sim_timeouts:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=timeout_s)
                return True
            except TimeoutError:
                return False
        woken = asyncio.ensure_future(self.wake.wait())
        alarm = asyncio.ensure_future(self.clock.sleep_until_ns(self.clock.now_ns() + round(timeout_s * 1e9)))
        try:
            await asyncio.wait({woken, alarm}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (woken, alarm):
                if not t.done():
                    t.cancel()
        return woken.done() and not woken.cancelled()

    def _armed(self, port: str, q: InputQueue) -> bool:
        """The input's timeout is running: it has one, has had a message, has not timed out yet, and
        has nothing queued (an input with messages still queued is not stale, even if its upstream ended)."""
        return (
            bool(q.spec.timeout_ms)
            and port in self._last_arrival
            and port not in self._timed_out
            and not len(q)
        )

    def _next_timeout(self) -> float | None:
        if not self._last_arrival:
            return None
        now = self._timeout_now()
        deadlines = [
            (self._last_arrival[p] + _ns(q.spec.timeout_ms or 0) - now) / 1e9
            for p, q in self.queues.items()
            if self._armed(p, q)
        ]
        return min(deadlines) if deadlines else None

    async def _fire_timeouts(self) -> None:
        now = self._timeout_now()
        for p, q in self.queues.items():
            if self._armed(p, q) and now - self._last_arrival[p] >= _ns(q.spec.timeout_ms or 0):
                self._timed_out.add(p)
                self.ctx.counter(f"timeouts.{p}")
                try:
                    await self.node.on_timeout(p)
                except _PASS_ON:
                    raise
                except BaseException as exc:
                    await self._on_failure("on_timeout", exc)

    async def _timer(self, port: str, period_s: float) -> None:
        period_ns = int(period_s * 1e9)
        t_next = self.clock.now_ns()
        seq = 0
        topic = self.queues[port].spec.from_
        while True:
            t_next += period_ns
            await self.clock.sleep_until_ns(t_next)
            now = self.clock.now_ns()
            self.queues[port].stats.observe_seq(topic, 0, seq)
            await self.deliver(port, Message(topic, seq, now, now, seq), blocking=True)
            seq += 1

    async def _run_source(self) -> None:
        while True:
            try:
                await self.node.run(self.ctx)
            except _PASS_ON:
                raise
            except BaseException as exc:
                if await self._on_failure("run", exc):
                    continue
                return
            if self.restart.policy == "always" and not self.stop_event.is_set():
                delay_s = self._budget.take(time.monotonic())
                if delay_s is not None:
                    await self._restart_node("run returned", delay_s)
                    continue
            await self._finish()
            return

    async def _restart_node(self, why: str, delay_s: float) -> None:
        self.restarts += 1
        self.ctx.log.warning("restarting (%s) in %.0f ms [restart %d]", why, delay_s * 1000, self.restarts)
        await asyncio.sleep(delay_s)
        try:
            await asyncio.wait_for(self.node.teardown(), timeout=0.5)
        except _PASS_ON:
            raise
        except BaseException:
            pass
        self.node = self.cls()
        await self._setup()

    async def _on_failure(self, hook: str, exc: BaseException) -> bool:
        """Log, count and report a failure; return True when the node was restarted and goes on."""
        self._book(hook, exc)
        delay_s = (
            self._budget.take(time.monotonic()) if self.restart.policy in ("on-failure", "always") else None
        )
        if delay_s is not None:
            try:
                await self._restart_node(f"{hook} failed", delay_s)
                return True
            except _PASS_ON:
                raise
            except BaseException as exc2:
                self.last_error = (
                    f"setup after restart: {type(exc2).__name__}: {exc2}{failure_file(self.params)}"
                )
                self.failed_hook = "setup"
        await self._give_up()
        return False

    def _book(self, hook: str, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{hook}: {type(exc).__name__}: {exc}{failure_file(self.params)}"
        self.failed_hook = hook
        log_hook_failure(self.ctx.log, hook, exc)

    async def _give_up(self) -> None:
        self.state = NodeState.FAILED
        for q in self.queues.values():
            q.stats.dropped_failed += q.discard_all()
        await self.host.node_failed(self)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "restarts": self.restarts,
            "failures": self.failures,
            "error": self.last_error,
            "busy_s": round(self.busy_s, 6),
            "counters": dict(self.ctx.counters),
        }
