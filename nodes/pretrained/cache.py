"""The first-run model cache shared by the pretrained models: train once, save atomically, share across processes."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from models.io import save_model

__all__ = ["cached_model", "spec_hash"]


def spec_hash(spec: Any) -> str:
    """12 hex digits naming a training spec (any JSON-able value), so a changed spec trains a new file."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def cached_model(path: Path, train: Callable[[], tuple[nn.Module, dict[str, Any]]]) -> Path:
    """`path`, made by `train()` (model, meta) and saved atomically if it does not exist yet.

    A file lock in the cache folder makes concurrent callers (nodes in several worker processes) share one
    training run: the first trains, the others wait and then load its file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".pretrain.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                net, meta = train()
                tmp = path.with_suffix(".tmp")
                save_model(net, tmp, meta)
                tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path
