"""Swarm science without the runtime: a shared synthetic world, detection, tracking, sensing, agents."""

from __future__ import annotations

from .agent import AgentBrain, BrainConfig, Decision, agent_name
from .detection import detect_clusters
from .sensing import SensingConfig, SensingPolicy
from .simulate import SwarmResult, make_camera, roi_experiment, simulate_swarm
from .tracking import Track, Tracker
from .tracklog import AgentState, TrackLog
from .world import Sector, SectorScene, World, clamp_to, coverage, fov_box, sector_of, sectors

__all__ = [
    "AgentBrain",
    "AgentState",
    "BrainConfig",
    "Decision",
    "Sector",
    "SectorScene",
    "SensingConfig",
    "SensingPolicy",
    "SwarmResult",
    "Track",
    "TrackLog",
    "Tracker",
    "World",
    "agent_name",
    "clamp_to",
    "coverage",
    "detect_clusters",
    "fov_box",
    "make_camera",
    "roi_experiment",
    "sector_of",
    "sectors",
    "simulate_swarm",
]
