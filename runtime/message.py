"""The message every edge carries: topic, per-output sequence number, sensing and emit times, payload."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Message", "Payload"]

Payload = Any  # plain msgpack types (None, bool, int, float, str, bytes, list, dict) and numpy arrays


class Message(NamedTuple):
    """One sample on an edge (immutable; a tuple because it is made once per message on the hot path).

    `seq` counts per output from 0, so a receiver can count gaps exactly. `t_sense_ns` is when the
    sensed data behind this message was captured (kept through the loop for end-to-end latency);
    `t_emit_ns` is when the producing node emitted it. Both are `time.time_ns()`-based wall times
    (or the simulated clock's). `origin` is the topic that sensed the data (the root of its path).
    Arrays inside `payload` are read-only.
    """

    topic: str
    seq: int
    t_sense_ns: int
    t_emit_ns: int
    payload: Payload = None
    origin: str = ""

    @property
    def source(self) -> str:
        """The producing node id (the part of the topic before '/')."""
        return self.topic.split("/", 1)[0]
