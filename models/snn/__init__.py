"""Spiking neural networks: LIF neurons, surrogate gradients, spiking layers, encoders, networks, pruning."""

from __future__ import annotations

from .encoders import ENCODINGS, Encoder, direct_encode, latency_encode, rate_encode
from .layers import LayerStep, SpikingConv1d, SpikingConv2d, SpikingLayer, SpikingLinear
from .lif import LIF, LIFParameters, LIFState, lif_fire, lif_integrate, lif_step
from .networks import LayerRecord, SNNOutput, SpikingConvNet, SpikingMLP, SpikingNet, StepResult
from .prune import Pruner, gradual_sparsity, magnitude_masks, weight_sparsity
from .surrogate import SURROGATES, atan, fast_sigmoid, heaviside, surrogate_grad

__all__ = [
    "ENCODINGS",
    "Encoder",
    "direct_encode",
    "latency_encode",
    "rate_encode",
    "LayerStep",
    "SpikingConv1d",
    "SpikingConv2d",
    "SpikingLayer",
    "SpikingLinear",
    "LIF",
    "LIFParameters",
    "LIFState",
    "lif_fire",
    "lif_integrate",
    "lif_step",
    "LayerRecord",
    "SNNOutput",
    "SpikingConvNet",
    "SpikingMLP",
    "SpikingNet",
    "StepResult",
    "Pruner",
    "gradual_sparsity",
    "magnitude_masks",
    "weight_sparsity",
    "SURROGATES",
    "atan",
    "fast_sigmoid",
    "heaviside",
    "surrogate_grad",
]
