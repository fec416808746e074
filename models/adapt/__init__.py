"""On-device adaptation of spiking nets on emulated crossbars: DFA and BPTT online learning rules."""

from __future__ import annotations

from .online import RULES, AdaptConfig, OnlineAdapter, UpdateReport
from .ops import AdaptError, LayerOps
from .rules import BPTT, DFA, FEEDBACK_MODES, Gradients, output_error
from .trace import NetView, WindowTrace, forward_trace

__all__ = [
    "RULES",
    "AdaptConfig",
    "OnlineAdapter",
    "UpdateReport",
    "AdaptError",
    "LayerOps",
    "BPTT",
    "DFA",
    "FEEDBACK_MODES",
    "Gradients",
    "output_error",
    "NetView",
    "WindowTrace",
    "forward_trace",
]
