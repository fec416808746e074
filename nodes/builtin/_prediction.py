"""The `pred` payload every classifier node emits, so `snn.classifier` and `adapt.*` stay interchangeable."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["prediction"]


def prediction(logits: Tensor, names: Sequence[str]) -> dict[str, object]:
    """`{"class": k, "label": name of k (or str(k)), "confidence": softmax(logits)[k]}` for one sample's
    logits [C], k = argmax."""
    k = int(logits.argmax())
    return {
        "class": k,
        "label": names[k] if k < len(names) else str(k),
        "confidence": float(torch.softmax(logits, 0)[k]),
    }
