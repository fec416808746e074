"""Model files: a plain dict of architecture, tensors and metadata, loaded without unpickling objects.

Layout (``torch.save``): ``{"arch": {"name": ..., **hyperparams}, "state_dict": {...}, "meta": {...},
"quant": {...}}``. Loading uses ``torch.load(path, weights_only=True)`` and rebuilds the model from
``arch`` through `BUILDERS`, so a model file can never run code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "BUILDERS",
    "Checkpoint",
    "ModelFileError",
    "build_model",
    "save_model",
    "load_model",
    "load_checkpoint",
]

#: arch name → "module:Class"; the class is called with the arch's other keys as keyword arguments.
BUILDERS: dict[str, str] = {
    "mlp": "models.mlp:MLP",
    "spiking_mlp": "models.snn.networks:SpikingMLP",
    "spiking_convnet": "models.snn.networks:SpikingConvNet",
    "event2vec": "models.event2vec.model:Event2Vec",
    "voxel_cnn": "models.event2vec.baseline:VoxelCNN",
}


class ModelFileError(ValueError):
    """A model file is missing, not an edgeloop model file, or names an unknown architecture."""


@dataclass
class Checkpoint:
    """A loaded model file: the built model (eval mode), its arch dict, metadata and quantized integers."""

    model: nn.Module
    arch: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    quant: dict[str, Any] = field(default_factory=dict)


def build_model(arch: dict[str, Any]) -> nn.Module:
    """Instantiate the architecture described by `arch` (random weights)."""
    name = arch.get("name")
    if name not in BUILDERS:
        raise ModelFileError(f"unknown model architecture {name!r}: known are {', '.join(sorted(BUILDERS))}")
    mod, _, cls = BUILDERS[name].partition(":")
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    return getattr(importlib.import_module(mod), cls)(**kwargs)  # type: ignore[no-any-return]


def save_model(
    model: nn.Module,
    path: str | Path,
    meta: dict[str, Any] | None = None,
    quant: dict[str, Any] | None = None,
) -> Path:
    """Save `model` (which must expose `.arch`) with JSON-like `meta` and optional quantized tensors."""
    arch = getattr(model, "arch", None)
    if not isinstance(arch, dict) or "name" not in arch:
        raise ModelFileError(f"{type(model).__name__} has no `arch` dict with a 'name'; cannot save it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob: dict[str, Any] = {
        "arch": dict(arch),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    if quant:
        blob["quant"] = quant
    torch.save(blob, path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a model file saved by `save_model` (weights_only: no pickled objects are executed)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal means "not our file"
        raise ModelFileError(f"{path}: not a loadable edgeloop model file ({type(e).__name__}: {e})") from e
    if not isinstance(blob, dict) or "arch" not in blob or "state_dict" not in blob:
        raise ModelFileError(
            f"{path}: expected a dict with 'arch' and 'state_dict' (save it with models.io.save_model)"
        )
    model = build_model(blob["arch"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return Checkpoint(model, blob["arch"], blob.get("meta", {}), blob.get("quant", {}))


def load_model(path: str | Path) -> nn.Module:
    """Load just the model (eval mode) from a file saved by `save_model`."""
    return load_checkpoint(path).model
