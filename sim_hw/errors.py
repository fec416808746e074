"""Exceptions raised by sim_hw (plain builtins subclasses: sim_hw must not import the runtime)."""

from __future__ import annotations

__all__ = ["BackendConfigError", "HardwareStateError"]


class BackendConfigError(ValueError):
    """A backend kind, spec or parameter is wrong; the message lists the valid choices."""


class HardwareStateError(RuntimeError):
    """An emulated layer was used in a way its hardware state does not allow (e.g. wrong input width)."""
