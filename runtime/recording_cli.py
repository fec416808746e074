"""Old path of `runtime.recording.cli`, kept while callers move (remove once nothing imports it)."""

from __future__ import annotations

from .recording.cli import register

__all__ = ["register"]
