"""Models a graph names as `pretrained:NAME` (trained on first use and cached, so a fresh clone runs offline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodes.pretrained.gestures import GestureSpec, pretrained_gestures

__all__ = ["PREFIX", "PRETRAINED", "is_pretrained", "pretrained_path"]

PREFIX = "pretrained:"

PRETRAINED: dict[str, Callable[[Path], Path]] = {
    # the demo's gesture classifier (examples/demo.yaml, docs/demo.md)
    "gestures": lambda cache: pretrained_gestures(GestureSpec(), cache),
}


def is_pretrained(model: str) -> bool:
    """Whether a `model` param names a pretrained model (`pretrained:NAME`) rather than a file."""
    return model.startswith(PREFIX)


def pretrained_path(model: str, cache_dir: str | Path) -> Path:
    """The model file for `pretrained:NAME`, trained into `cache_dir` on first use (minutes at most)."""
    name = model.removeprefix(PREFIX)
    if name not in PRETRAINED:
        raise ValueError(
            f"unknown pretrained model {model!r}; available: " + ", ".join(PREFIX + n for n in PRETRAINED)
        )
    return PRETRAINED[name](Path(cache_dir))
