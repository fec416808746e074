"""Old path of `runtime.recording.info`, kept while callers move (remove once nothing imports it)."""

from __future__ import annotations

from .recording.info import RecordingInfo, RecordingOverview, TopicInfo, read_overview, summarize

__all__ = ["TopicInfo", "RecordingInfo", "summarize", "RecordingOverview", "read_overview"]
