"""What a recording holds: topics, counts, time span, rates, sequence gaps, the graph it came from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcap.reader import SeekingReader

from ..errors import RecordingError
from .layout import GRAPH_METADATA, STATS_METADATA
from .reader import RecordingReader

__all__ = ["TopicInfo", "RecordingInfo", "summarize", "RecordingOverview", "read_overview"]

_WRAP = 1 << 32


@dataclass
class TopicInfo:
    """Per-topic counts. `gaps` counts sequence numbers missing between recorded messages (lost before
    or at the recorder); `restarts` counts times the sequence went back (the producer restarted)."""

    topic: str
    encoding: str = ""
    messages: int = 0
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    seq_first: int | None = None
    seq_last: int | None = None
    gaps: int = 0
    restarts: int = 0

    @property
    def rate_hz(self) -> float:
        if (
            self.messages < 2
            or self.first_ns is None
            or self.last_ns is None
            or self.last_ns <= self.first_ns
        ):
            return float("nan")
        return (self.messages - 1) * 1e9 / (self.last_ns - self.first_ns)

    def observe(self, log_time_ns: int, seq32: int, nbytes: int) -> None:
        self.messages += 1
        self.bytes += nbytes
        self.first_ns = log_time_ns if self.first_ns is None else min(self.first_ns, log_time_ns)
        self.last_ns = log_time_ns if self.last_ns is None else max(self.last_ns, log_time_ns)
        if self.seq_last is None:
            self.seq_first = self.seq_last = seq32
            return
        # MCAP keeps 32 bits of our sequence numbers: a small step forward is progress (or a gap),
        # anything else means the producer started again at 0.
        step = (seq32 - self.seq_last) % _WRAP
        if 0 < step < _WRAP // 2:
            self.gaps += step - 1
            self.seq_last += step
        else:
            self.restarts += 1
            self.seq_last = seq32


@dataclass
class RecordingInfo:
    """A full scan of a recording (every record read; payloads not decoded)."""

    path: str
    size_bytes: int
    complete: bool
    error: str | None
    library: str
    compressions: dict[str, int]
    topics: dict[str, TopicInfo]
    graph: dict[str, str] = field(default_factory=dict)
    recorder: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.topics.values())

    @property
    def first_ns(self) -> int | None:
        return min((t.first_ns for t in self.topics.values() if t.first_ns is not None), default=None)

    @property
    def last_ns(self) -> int | None:
        return max((t.last_ns for t in self.topics.values() if t.last_ns is not None), default=None)

    @property
    def duration_s(self) -> float:
        first, last = self.first_ns, self.last_ns
        return 0.0 if first is None or last is None else (last - first) / 1e9

    def to_dict(self) -> dict[str, Any]:
        graph = dict(self.graph)
        graph.pop("text", None)
        return {
            "path": self.path,
            "size_bytes": self.size_bytes,
            "complete": self.complete,
            "error": self.error,
            "library": self.library,
            "compression": self.compressions,
            "messages": self.messages,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "duration_s": self.duration_s,
            "bytes_per_message": self.size_bytes / self.messages if self.messages else None,
            "graph": graph,
            "recorder": self.recorder,
            "topics": {
                k: {**asdict(t), "rate_hz": None if t.rate_hz != t.rate_hz else t.rate_hz}
                for k, t in self.topics.items()
            },
        }


def summarize(path: str | Path) -> RecordingInfo:
    """Scan the whole file. A truncated file gives what it holds, with `error` saying where it stops."""
    reader = RecordingReader(path)
    topics: dict[str, TopicInfo] = {}
    error = None
    try:
        for e in reader.entries():
            t = topics.get(e.topic)
            if t is None:
                t = topics[e.topic] = TopicInfo(e.topic)
            t.observe(e.log_time_ns, e.sequence, len(e.data))
    except RecordingError as exc:
        error = str(exc)
    for ch in reader.channels.values():
        topics.setdefault(ch.topic, TopicInfo(ch.topic)).encoding = ch.encoding
    return RecordingInfo(
        str(path),
        reader.size,
        reader.complete and error is None,
        error,
        reader.library,
        reader.compressions,
        dict(sorted(topics.items())),
        reader.metadata.get(GRAPH_METADATA, {}),
        reader.metadata.get(STATS_METADATA, {}),
    )


@dataclass
class RecordingOverview:
    """What replay needs before it starts: the topics (with counts when the summary has them) and the graph."""

    path: str
    topics: dict[str, int | None]
    graph: dict[str, str]
    complete: bool

    @property
    def overrides(self) -> list[str]:
        try:
            value = json.loads(self.graph.get("overrides", "[]"))
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []


def read_overview(path: str | Path) -> RecordingOverview:
    """Topics and graph metadata from the summary section (fast), or from a full scan when it is missing."""
    reader = RecordingReader(path)  # checks that this is MCAP at all, with a clear message
    try:
        with open(path, "rb") as f:
            seeking = SeekingReader(f)
            summary = seeking.get_summary()
            if summary is not None and summary.channels:
                counts = summary.statistics.channel_message_counts if summary.statistics else {}
                topics: dict[str, int | None] = {
                    ch.topic: counts.get(cid) for cid, ch in summary.channels.items()
                }
                graph = next((m.metadata for m in seeking.iter_metadata() if m.name == GRAPH_METADATA), {})
                return RecordingOverview(str(path), topics, dict(graph), True)
    except Exception:  # no usable summary (cut short, or written by a tool that skips it): scan instead  # noqa: S110
        pass
    info = summarize(path)
    del reader
    return RecordingOverview(
        str(path), {k: t.messages for k, t in info.topics.items()}, info.graph, info.complete
    )
