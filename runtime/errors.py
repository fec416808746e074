"""One exception tree for edgeloop: catch `EdgeloopError`, or the subclass that says what to do."""

from __future__ import annotations

__all__ = [
    "EdgeloopError",
    "GraphError",
    "CodecError",
    "TransportError",
    "InputTimeoutError",
    "NodeError",
    "HardwareError",
    "RecordingError",
]


class EdgeloopError(Exception):
    """Root of every error edgeloop raises on purpose."""


class GraphError(EdgeloopError, ValueError):
    """The graph file or a node's parameters are wrong; the message names file, line and key."""


class CodecError(EdgeloopError, ValueError):
    """A message could not be encoded or decoded (bad dtype, oversized, malformed frames)."""


class TransportError(EdgeloopError, ConnectionError):
    """A socket could not be bound, connected or used."""


class InputTimeoutError(EdgeloopError, TimeoutError):
    """A network wait or an input ran past its deadline."""


class NodeError(EdgeloopError, RuntimeError):
    """A node's code failed (setup, on_input, run or teardown)."""


class HardwareError(EdgeloopError, ValueError):
    """An emulated hardware backend was configured or used wrongly."""


class RecordingError(EdgeloopError, ValueError):
    """A recording (AEDAT4, MCAP, CSV) is malformed, truncated or of the wrong type."""
