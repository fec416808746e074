"""Old path of `runtime.recording.graph`, kept while callers move (remove once nothing imports it)."""

from __future__ import annotations

from .recording.graph import (
    RECORDER_USES,
    REPLAY_USES,
    ReplayPlan,
    add_recorder,
    graph_metadata,
    recordable_topics,
    replace_sources,
    select_topics,
)

__all__ = [
    "RECORDER_USES",
    "REPLAY_USES",
    "graph_metadata",
    "recordable_topics",
    "select_topics",
    "add_recorder",
    "ReplayPlan",
    "replace_sources",
]
