"""Errors of the pure sensor modules, which do not import `runtime.errors` (node adapters translate them)."""

from __future__ import annotations

__all__ = ["RecordingFormatError"]


class RecordingFormatError(ValueError):
    """A recording (AEDAT4, event array, IMU CSV) is malformed, truncated or of the wrong type.

    The message names the file, and where it can, the line, column or packet. Node adapters
    re-raise it as `runtime.errors.RecordingError`; plain `except ValueError` also catches it.
    """
