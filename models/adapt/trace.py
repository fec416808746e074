"""One forward pass of a spiking net on emulated hardware, with everything a learning rule needs from it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from models.snn.layers import SpikingLayer
from models.snn.lif import LIFParameters
from models.snn.networks import LayerRecord, SpikingNet
from models.snn.surrogate import SURROGATES, surrogate_grad
from sim_hw.backend import HardwareModel
from sim_hw.cost import CostReport

from .ops import AdaptError, LayerOps

__all__ = ["WindowTrace", "NetView", "forward_trace"]


class NetView:
    """The adaptable parts of a `SpikingNet` mapped by a backend: per spiking layer its synapse's
    `LayerOps` and LIF parameters, plus the readout's `LayerOps`.

    Layers are numbered 0..L−1 from the input; the readout is the linear layer after them.
    """

    def __init__(self, hw: HardwareModel | SpikingNet) -> None:
        net = hw.model if isinstance(hw, HardwareModel) else hw
        if not isinstance(net, SpikingNet):
            raise AdaptError(f"on-device adaptation needs a models.snn SpikingNet, got {type(net).__name__}")
        self.hw: HardwareModel | None = hw if isinstance(hw, HardwareModel) else None
        self.net = net
        self.layers: list[LayerOps] = []
        self.lif: list[LIFParameters] = []
        for i, layer in enumerate(net.layers):
            if not isinstance(layer, SpikingLayer):
                raise AdaptError(f"layer {i} is a {type(layer).__name__}, not a synapse + LIF SpikingLayer")
            self.layers.append(LayerOps(layer.synapse, f"layers.{i}.synapse"))
            self.lif.append(layer.lif.params())
        self.readout = LayerOps(net.readout, "readout")

    def surrogate(self, i: int, membrane: Tensor) -> Tensor:
        """σ′(v′ − v_th) of spiking layer i, as its neuron's surrogate defines it [SCIENCE 4.6]."""
        p = self.lif[i]
        alpha = SURROGATES[p.surrogate][1] if p.alpha is None else p.alpha
        return surrogate_grad(p.surrogate, membrane - p.v_th, alpha)

    def between(self, i: int, spikes: Tensor) -> Tensor:
        """Layer i's spikes [T, B, ...] → the next layer's (or readout's) input [T, B, ...]."""
        t, b = spikes.shape[:2]
        out = self.net._between(i, spikes.reshape(t * b, *spikes.shape[2:]))
        return out.reshape(t, b, *out.shape[1:])


@dataclass
class WindowTrace:
    """A forward pass over T steps of one or more samples.

    logits [B, C]; records: per spiking layer input/membrane/spikes [T, B, ...]; features: the
    readout's input at every step [T, B, F]; cost: what the hardware spent on this pass (inference).
    """

    logits: Tensor
    records: tuple[LayerRecord, ...]
    features: Tensor
    cost: CostReport

    @property
    def timesteps(self) -> int:
        return int(self.features.shape[0])


@torch.no_grad()
def forward_trace(view: NetView, x: Tensor) -> WindowTrace:
    """Run x [T, B, ...] on the hardware (or the float net), keeping each layer's input, membrane, spikes."""
    if view.hw is None:
        out, cost = view.net(x, record=True), CostReport()
    else:
        out, cost = view.hw.run(x, record=True)
    features = view.between(len(view.layers) - 1, out.records[-1].spikes)
    return WindowTrace(out.logits, out.records, features, cost)
