"""event2vec (Fang & Panda): events as tokens for a small attention encoder, and its voxel-grid CNN baseline."""

from __future__ import annotations

from .baseline import VoxelCNN
from .embedding import TIME_MODES, AxisEmbedding, EventEmbedding
from .model import EncoderBlock, Event2Vec, LinearAttention

__all__ = [
    "VoxelCNN",
    "TIME_MODES",
    "AxisEmbedding",
    "EventEmbedding",
    "EncoderBlock",
    "Event2Vec",
    "LinearAttention",
]
