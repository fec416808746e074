"""Swarm nodes: an agent's camera over the shared world, detector, controller, fail-safe mover, recorder.

Thin adapters: the science lives in `nodes.swarm` (no runtime imports). Graphs: `examples/swarm/`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from nodes.builtin.actuator import Actuator
from nodes.builtin.event_camera import SyntheticEventCameraSource, parse_roi
from nodes.swarm import AgentBrain, BrainConfig, SectorScene, SensingConfig, World, agent_name, sectors
from nodes.swarm.detection import detect_clusters
from nodes.swarm.sensing import OFF
from nodes.swarm.simulate import make_camera, read_out
from nodes.swarm.tracklog import TrackLog
from runtime.clock import WallClock
from runtime.errors import GraphError
from runtime.message import Message
from runtime.node import Context, Node
from runtime.node import Params as NodeParams

__all__ = ["WorldParams", "SwarmCamera", "SwarmDetector", "SwarmController", "SwarmMover", "SwarmRecorder"]


class WorldParams(NodeParams):
    """The shared world: every node of one swarm must give the same values."""

    seed: int = Field(0, description="world seed: the targets' paths")
    n_agents: int = Field(4, ge=1, le=64)
    n_targets: int = Field(5, ge=0, le=100)
    world_px: float = Field(192.0, gt=16, description="the square world's side")
    fov_px: int = Field(64, ge=16, le=1024, description="each camera's sensor side (1 px = 1 world px)")

    def world(self) -> World:
        return World(seed=self.seed, width=self.world_px, height=self.world_px, n_targets=self.n_targets)


class SwarmCamera(SyntheticEventCameraSource):
    """An agent's synthetic event camera (v2e pixel model) filming the shared world over its view.

    World time is the run clock (µs), so every agent process films the same world. Control inputs:
    `roi` ([x0, y0, x1, y1] sensor px; None = full frame; an empty box = read nothing out),
    `period_us`, and `position` ({"xy": [x, y]} world px of the view's centre, from the mover). A
    jump of the view by more than `saccade_px` resets the pixels' memory (no burst of stale events).
    Batches carry the view's `origin` and the `roi` read out; the last one has `final: true`.
    """

    inputs = ("roi", "period_us", "position")
    outputs = ("events",)

    class Params(WorldParams):
        agent: int = Field(0, ge=0)
        period_us: int = Field(10_000, gt=0)
        step_us: int = Field(5000, gt=0, description="render interval; events are interpolated between")
        shot_noise_hz: float = Field(1.0, ge=0)
        duration_s: float | None = Field(None, gt=0, description="stop after this much world time")
        saccade_px: float = Field(4.0, gt=0)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        self.width = self.height = p.fov_px
        self.scene = SectorScene(p.world(), p.fov_px)
        home = np.array(sectors(p.n_agents, p.world_px, p.world_px)[p.agent % p.n_agents].center)
        self.center = home
        self.scene.origin = (float(home[0] - p.fov_px / 2), float(home[1] - p.fov_px / 2))
        self.cam = make_camera(self.scene, p.seed * 1000 + p.agent, p.step_us, p.shot_noise_hz)
        self.roi: Any = None
        self.period_us = p.period_us
        self._reset = False

    async def on_input(self, port: str, msg: Message) -> None:
        if port == "position":
            xy = np.asarray(msg.payload["xy"], np.float64)
            self._reset |= float(np.hypot(*(xy - self.center))) > self.ctx.params.saccade_px
            self.center = xy
        elif (
            port == "roi"
            and msg.payload is not None
            and len(msg.payload) == 4
            and (msg.payload[2] <= msg.payload[0] or msg.payload[3] <= msg.payload[1])
        ):
            self.roi = OFF
        elif port == "roi":
            try:
                self.roi = parse_roi(msg.payload, self.width, self.height)
            except (TypeError, ValueError) as exc:
                self.ctx.log.warning("ignored roi %r: %s", msg.payload, exc)
                self.ctx.counter("bad_control")
        else:
            await super().on_input(port, msg)

    async def run(self, ctx: Context) -> None:
        p, clock = ctx.params, ctx.clock
        threaded = isinstance(clock, WallClock)  # a simulated clock must not see a thread's idle time
        t = clock.now_ns() // 1000
        self.cam.pixels.reset(self.scene.render(t), t)
        end = None if p.duration_s is None else t + int(p.duration_s * 1e6)
        while not ctx.stop_event.is_set():
            t0 = self.cam.t_us
            t1 = t0 + self.period_us if end is None else min(t0 + self.period_us, end)
            await clock.sleep_until_ns(t1 * 1000)
            now = clock.now_ns() // 1000
            if now - t1 > 5 * self.period_us and (end is None or t0 < end - self.period_us):
                # Far behind real time (an overloaded host): skip ahead rather than queue stale batches,
                # but never past the last batch. (Never on a simulated clock, which waits for everyone.)
                ctx.counter("lag_skips")
                skip_to = now if end is None else min(now, end - self.period_us)
                self.cam.pixels.reset(self.scene.render(skip_to), skip_to)
                continue
            self.scene.origin = (float(self.center[0] - p.fov_px / 2), float(self.center[1] - p.fov_px / 2))
            if self._reset:
                self._reset = False
                self.cam.pixels.reset(self.scene.render(t0), t0)
            roi = self.roi
            ev = (
                await asyncio.to_thread(read_out, self.cam, roi, t1 - t0)
                if threaded
                else read_out(self.cam, roi, t1 - t0)
            )
            ctx.counter("events", len(ev))
            final = end is not None and t1 >= end
            await ctx.emit(
                "events",
                {
                    "events": ev,
                    "width": p.fov_px,
                    "height": p.fov_px,
                    "t0_us": t0,
                    "t1_us": t1,
                    "origin": list(self.scene.origin),
                    "roi": None if roi is None else list(roi),
                    "final": final,
                },
                t_sense=t1 * 1000,
            )
            if final:
                return


class SwarmDetector(Node):
    """Event clusters in each batch → detections {"dets": (k, 3) [x, y, n] sensor px, batch times, origin, roi}."""

    inputs = ("events",)
    outputs = ("detections",)

    class Params(NodeParams):
        cell_px: int = Field(4, ge=1)
        min_events: int = Field(6, ge=1)
        radius_px: float = Field(7.0, gt=0)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx

    async def on_input(self, port: str, msg: Message) -> None:
        b, p = msg.payload, self.ctx.params
        ev = b["events"]
        dets = detect_clusters(
            ev["x"],
            ev["y"],
            b["width"],
            b["height"],
            cell_px=p.cell_px,
            min_events=p.min_events,
            radius_px=p.radius_px,
        )
        self.ctx.counter("events", len(ev))
        self.ctx.counter("detections", len(dets))
        await self.ctx.emit(
            "detections",
            {
                "dets": dets,
                "t0_us": b["t0_us"],
                "t1_us": b["t1_us"],
                "origin": b["origin"],
                "roi": b["roi"],
                "final": b.get("final", False),
            },
            t_sense=msg,
        )


class SwarmController(Node):
    """An agent's brain (`nodes.swarm.AgentBrain`): own detections (`dets`) and peers' shares (any other
    input name) → next `roi` and `period_us` for its camera (action-to-sensing), a velocity `cmd` for
    its mover, and its `share` (confirmed tracks, handoffs) for its peers and the recorder.

    A source too: it finishes after its camera's final batch, which lets a swarm graph end by itself.
    """

    dynamic_inputs = True
    outputs = ("roi", "period_us", "cmd", "share")

    class Params(WorldParams):
        agent: int = Field(0, ge=0)
        sensing: str = Field(
            "roi", pattern="^(roi|full)$", description="roi: action-to-sensing; full: every pixel"
        )
        period_us: int = Field(10_000, gt=0)
        idle_period_us: int = Field(20_000, gt=0)
        max_speed_px_s: float = Field(40.0, ge=0)
        scan_every: int = Field(20, ge=1)
        revisit: int = Field(3, ge=1)
        strip_every: int = Field(4, ge=1)

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        if p.agent >= p.n_agents:
            raise GraphError(f"node '{ctx.node_id}': agent {p.agent} is outside 0..{p.n_agents - 1}")
        sensing = SensingConfig(
            mode=p.sensing,
            fov_px=p.fov_px,
            scan_every=p.scan_every,
            revisit=p.revisit,
            strip_every=p.strip_every,
        )
        self.brain = AgentBrain(
            p.world(),
            BrainConfig(
                agent=p.agent,
                n_agents=p.n_agents,
                fov_px=p.fov_px,
                period_us=p.period_us,
                idle_period_us=p.idle_period_us,
                max_speed_px_s=p.max_speed_px_s,
                sensing=sensing,
            ),
        )
        self.period = p.period_us
        self.done = asyncio.Event()
        self.shares = 0
        self.silent: set[str] = set()

    async def run(self, ctx: Context) -> None:
        await self.done.wait()

    async def on_input(self, port: str, msg: Message) -> None:
        ctx = self.ctx
        if port != "dets":
            ctx.counter("peer_shares")
            if port in self.silent:
                self.silent.discard(port)
                ctx.log.info("peer input '%s' is back", port)
            for text in self.brain.on_peer(msg.payload):
                ctx.log.info("%s", text)
            return
        b = msg.payload
        roi = (
            None
            if b["roi"] is None
            else (int(b["roi"][0]), int(b["roi"][1]), int(b["roi"][2]), int(b["roi"][3]))
        )
        d = self.brain.step(b["dets"], int(b["t0_us"]), int(b["t1_us"]), np.asarray(b["origin"]), roi)
        for text in d.notes:
            ctx.log.info("%s", text)
        await ctx.emit("roi", None if d.roi is None else list(d.roi), t_sense=msg)
        if d.period_us != self.period:
            self.period = d.period_us
            await ctx.emit("period_us", d.period_us, t_sense=msg)
        await ctx.emit("cmd", [float(d.velocity[0]), float(d.velocity[1])], t_sense=msg)
        share = {**d.share, "final": bool(b.get("final", False)), "notes": d.notes}
        await ctx.emit("share", share, t_sense=msg)
        self.shares += 1
        if self.shares == 1:
            ctx.gauge("first_share_unix_s", time.time())  # the supervision benchmark reads this
        for k, v in self.brain.counts.items():
            ctx.gauge(k, v)
        ctx.gauge("tracks", len(self.brain.confirmed()))
        if share["final"]:
            self.done.set()

    async def on_timeout(self, port: str) -> None:
        self.silent.add(port)
        self.ctx.counter("peers_silent")
        if not self.done.is_set():
            self.ctx.log.warning("peer input '%s' is silent: going on without it", port)


class SwarmMover(Actuator):
    """An agent's body: integrates velocity commands ([vx, vy] px/s) into its position inside its sector
    and reports it on `position` ({"agent", "xy", "safe"}) for its camera and the recorder.

    Fail-safe (`Actuator`): with `timeout_ms` on `cmd`, a silent controller (or a dead agent) puts it
    in the safe state "hold" — velocity zero, position held — until commands resume.
    """

    outputs = ("state", "position")

    class Params(Actuator.Params):
        safe: Any = Field("hold", description="the safe state: hold position (velocity zero)")
        agent: int = Field(0, ge=0)
        n_agents: int = Field(4, ge=1, le=64)
        world_px: float = Field(192.0, gt=16)
        max_speed_px_s: float = Field(40.0, ge=0)

    async def setup(self, ctx: Context) -> None:
        p = ctx.params
        s = sectors(p.n_agents, p.world_px, p.world_px)[p.agent % p.n_agents]
        self.box = (s.x0, s.y0, s.x1, s.y1)
        self.pos = np.array(s.center, np.float64)
        self.vel = np.zeros(2)
        self.t_ns: int | None = None
        await super().setup(ctx)

    def _integrate(self) -> None:
        now = self.ctx.clock.now_ns()
        if self.t_ns is not None:
            x0, y0, x1, y1 = self.box
            self.pos = np.clip(self.pos + self.vel * (now - self.t_ns) * 1e-9, [x0, y0], [x1, y1])
        self.t_ns = now

    async def act(self, value: Any) -> None:
        self._integrate()
        if value is None or isinstance(value, str):
            self.vel = np.zeros(2)
            return
        v = np.asarray(value, np.float64).reshape(2)
        speed, top = float(np.hypot(*v)), self.ctx.params.max_speed_px_s
        self.vel = v * (top / speed) if speed > top else v

    async def _report(self, t_sense: Message | None = None) -> None:
        self.ctx.gauge("x", float(self.pos[0]))
        self.ctx.gauge("y", float(self.pos[1]))
        self.ctx.gauge("safe", float(self.in_safe_state))
        await self.ctx.emit(
            "position",
            {
                "agent": self.ctx.params.agent,
                "xy": [float(self.pos[0]), float(self.pos[1])],
                "safe": self.in_safe_state,
            },
            t_sense=t_sense,
        )

    async def on_input(self, port: str, msg: Message) -> None:
        await super().on_input(port, msg)
        if port == "tick":
            self._integrate()
        await self._report(msg)

    async def on_timeout(self, port: str) -> None:
        await super().on_timeout(port)
        await self._report()


class SwarmRecorder(Node):
    """Collects every agent's share and position into a `TrackLog`; prints the swarm's state every
    `report_s`, and at the end (all agents' final batches, or stop) writes the log (`log_path`, JSON)
    and the tracks picture (`path`, PNG). Any input name: shares and positions are told apart by content.
    """

    dynamic_inputs = True

    class Params(WorldParams):
        path: str = "out/swarm/tracks.png"
        log_path: str | None = Field("out/swarm/tracks.json", description="default: `path` with .json")
        plot: bool = Field(True, description="draw the PNG (in a child process) as well as the JSON log")
        report_s: float = Field(2.0, gt=0, description="print the swarm's state this often (world time)")
        grace_s: float = Field(
            3.0, gt=0, description="after one agent's final batch, wait this long for the others"
        )

    async def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        p = ctx.params
        self.log = TrackLog(p.world(), p.n_agents, p.fov_px)
        self.finals: set[int] = set()
        self.all_final = asyncio.Event()
        self.any_final = asyncio.Event()
        self.written = False
        self._next_report: int | None = None

    async def on_input(self, port: str, msg: Message) -> None:
        m = msg.payload
        if not isinstance(m, dict) or not 0 <= int(m.get("agent", -1)) < self.log.n_agents:
            self.ctx.counter("ignored")
            return
        a = int(m["agent"])
        if "xy" in m:
            self.log.observe_position(a, m["xy"], safe=bool(m.get("safe")))
            return
        self.log.observe_share(m)
        for text in m.get("notes") or []:
            self.log.note(int(m["t_us"]), text)
        self.ctx.counter("shares")
        t = int(m["t_us"])
        if self._next_report is None:
            self._next_report = t + int(self.ctx.params.report_s * 1e6)
        elif t >= self._next_report:
            self._next_report = t + int(self.ctx.params.report_s * 1e6)
            self._report()
        if m.get("final"):
            self.finals.add(a)
            self.any_final.set()
            if len(self.finals) == self.log.n_agents:
                self.all_final.set()

    def _report(self) -> None:
        s = self.log.summary()
        for k in ("coverage_pct", "tracked_pct", "static_coverage_pct"):
            self.ctx.gauge(k, s[k])
        where = ", ".join(
            f"{agent_name(i)} ({a.center[0]:.0f}, {a.center[1]:.0f}){' SAFE' if a.safe else ''} "
            f"{len(a.tracks)} tracks"
            for i, a in enumerate(self.log.agents)
            if a.center is not None
        )
        self.ctx.log.info(
            "swarm: coverage %.0f%% (parked cameras: %.0f%%), tracked %.0f%% | %s",
            s["coverage_pct"],
            s["static_coverage_pct"],
            s["tracked_pct"],
            where,
        )

    async def run(self, ctx: Context) -> None:
        await self.any_final.wait()
        try:
            await asyncio.wait_for(self.all_final.wait(), timeout=ctx.params.grace_s)
        except TimeoutError:
            missing = sorted(set(range(self.log.n_agents)) - self.finals)
            ctx.log.warning(
                "no final batch from %s: writing what was recorded", ", ".join(map(agent_name, missing))
            )
        await self._write()

    async def _write(self, *, wait: bool = True) -> None:
        if self.written:
            return
        self.written = True
        p = self.ctx.params
        self._report()
        log_path = Path(p.log_path or Path(p.path).with_suffix(".json"))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(self.log.to_json())
        self.ctx.counter("written")
        if not p.plot:
            self.ctx.log.info("track log: %s", log_path)
            return
        # Drawn by a child process: this one never loads matplotlib (seconds to import and to exit).
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nodes.swarm.plot", str(log_path), p.path, start_new_session=not wait
        )
        if not wait:
            self.ctx.log.info("track log: %s; drawing %s", log_path, p.path)
            return
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=60)
        except TimeoutError:
            proc.kill()
            code = -1
        if code == 0:
            self.ctx.log.info("tracks picture: %s, track log: %s", p.path, log_path)
        else:
            self.ctx.log.warning(
                "drawing %s failed (exit code %s); the track log is %s", p.path, code, log_path
            )

    async def teardown(self) -> None:
        if not self.written and self.log.times:  # stopped early (Ctrl-C, --duration): keep what we have
            await self._write(wait=False)
