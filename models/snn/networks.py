"""Spiking networks (MLP, 1-D/2-D conv) taking [T, B, ...] and returning logits plus per-layer records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from .layers import SpikingConv1d, SpikingConv2d, SpikingLayer, SpikingLinear
from .lif import LIFState

__all__ = ["LayerRecord", "SNNOutput", "StepResult", "SpikingNet", "SpikingMLP", "SpikingConvNet"]


class LayerRecord(NamedTuple):
    """What one spiking layer saw and did over T steps (all [T, B, ...]).

    input: the layer's input (encoded sample or the previous layer's pooled/flattened spikes);
    membrane: pre-reset membrane v' (what was compared with v_th, the surrogate's argument is v' − v_th);
    spikes: output spikes before any pooling.
    """

    input: Tensor
    membrane: Tensor
    spikes: Tensor


class StepResult(NamedTuple):
    """One network step: readout [B, C] plus each spiking layer's input, membrane, spikes and new state."""

    readout: Tensor
    inputs: tuple[Tensor, ...]
    membranes: tuple[Tensor, ...]
    spikes: tuple[Tensor, ...]
    state: tuple[LIFState, ...]


@dataclass
class SNNOutput:
    """A forward pass over T steps.

    logits [B, C]: the time-mean of the readout; spike_counts: per spiking layer, spikes summed over T
    ([B, ...]); records: per spiking layer `LayerRecord`s when called with ``record=True``, else ().
    """

    logits: Tensor
    spike_counts: tuple[Tensor, ...]
    records: tuple[LayerRecord, ...] = ()


class SpikingNet(nn.Module):
    """Base: a stack of `SpikingLayer`s and a non-spiking linear readout averaged over time.

    logits = (1/T) Σ_t W_out · flatten(s_t^L) + b. Subclasses fill `layers`, `readout` and `_arch`, and may
    override `_between` (pooling/flattening between layers).
    """

    arch_name: ClassVar[str] = ""
    layers: nn.ModuleList
    readout: nn.Linear

    def __init__(self) -> None:
        super().__init__()
        self._arch: dict[str, Any] = {}

    @property
    def arch(self) -> dict[str, Any]:
        """The builder arguments (`models.io` saves them beside the state dict)."""
        return {"name": self.arch_name, **self._arch}

    def _between(self, i: int, spikes: Tensor) -> Tensor:
        """Transform layer i's spikes into the next layer's (or the readout's) input."""
        return spikes

    def step(self, x_t: Tensor, state: Sequence[LIFState] | None = None) -> StepResult:
        """Advance one time step. x_t [B, ...]; state from the previous step (None = rest)."""
        inputs, membranes, spikes, new_state = [], [], [], []
        h = x_t
        for i, layer in enumerate(self.layers):
            out = layer(h, None if state is None else state[i])
            inputs.append(h)
            membranes.append(out.membrane)
            spikes.append(out.spikes)
            new_state.append(out.state)
            h = self._between(i, out.spikes)
        return StepResult(self.readout(h), tuple(inputs), tuple(membranes), tuple(spikes), tuple(new_state))

    def forward(self, x: Tensor, record: bool = False) -> SNNOutput:
        """x [T, B, ...] → SNNOutput. With ``record=True`` every layer's input/membrane/spikes per step are kept."""
        if x.dim() < 3 or x.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} expects input [T >= 1, B, ...], got shape {tuple(x.shape)}"
            )
        state: tuple[LIFState, ...] | None = None
        total: Tensor | None = None
        counts: list[Tensor] = []
        recs: list[list[tuple[Tensor, Tensor, Tensor]]] = []
        for x_t in x:
            r = self.step(x_t, state)
            state = r.state
            total = r.readout if total is None else total + r.readout
            counts = list(r.spikes) if not counts else [c + s for c, s in zip(counts, r.spikes, strict=True)]
            if record:
                recs.append(list(zip(r.inputs, r.membranes, r.spikes, strict=True)))
        records: tuple[LayerRecord, ...] = ()
        if record:
            records = tuple(
                LayerRecord(*(torch.stack([step[i][k] for step in recs]) for k in range(3)))
                for i in range(len(self.layers))
            )
        assert total is not None  # internal: x.shape[0] >= 1 was checked above
        return SNNOutput(total / x.shape[0], tuple(counts), records)

    def spiking_layers(self) -> list[SpikingLayer]:
        return [m for m in self.layers if isinstance(m, SpikingLayer)]

    @torch.no_grad()
    def state_shapes(self, sample_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Membrane shapes [B, ...] per spiking layer for one input step of shape `sample_shape` ([B, ...])."""
        p = next(self.parameters())
        r = self.step(torch.zeros(tuple(sample_shape), dtype=p.dtype, device=p.device))
        return [tuple(s.v.shape) for s in r.state]


def _lif_kwargs(beta: float, v_th: float, reset: str, surrogate: str, learn_beta: bool) -> dict[str, Any]:
    return {"beta": beta, "v_th": v_th, "reset": reset, "surrogate": surrogate, "learn_beta": learn_beta}


class SpikingMLP(SpikingNet):
    """Fully connected SNN: sizes [n_in, h_1, …, h_k, n_classes]; every hidden layer is Linear + LIF.

    Input [T, B, n_in] (extra trailing dims are flattened); logits [B, n_classes].

    Example::

        net = SpikingMLP([6, 64, 5], beta=0.9)
        out = net(torch.rand(25, 32, 6), record=True)   # out.logits [32, 5]; out.records[0].spikes [25, 32, 64]
    """

    arch_name = "spiking_mlp"

    def __init__(
        self,
        sizes: Sequence[int],
        beta: float = 0.9,
        v_th: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "atan",
        learn_beta: bool = False,
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 3:
            raise ValueError(
                f"SpikingMLP sizes {sizes}: give [n_in, hidden..., n_classes] with >= 1 hidden layer"
            )
        kw = _lif_kwargs(beta, v_th, reset, surrogate, learn_beta)
        self.layers = nn.ModuleList(
            SpikingLinear(a, b, **kw) for a, b in zip(sizes[:-2], sizes[1:-1], strict=True)
        )
        self.readout = nn.Linear(sizes[-2], sizes[-1])
        self._arch = {"sizes": sizes, **kw}

    def step(self, x_t: Tensor, state: Sequence[LIFState] | None = None) -> StepResult:
        return super().step(x_t.flatten(1), state)


class SpikingConvNet(SpikingNet):
    """Conv SNN: [conv('same') → LIF → max-pool] × len(channels) → flatten → [Linear → LIF] → linear readout.

    dims=1: input [T, B, C_in, L] (IMU windows); dims=2: [T, B, C_in, H, W] (event frames, voxel grids).
    `input_size` is L or (H, W). Max-pooling binary spikes keeps them binary. Records and spike counts are
    per spiking layer (conv layers first, then the optional hidden FC layer).

    Example::

        net = SpikingConvNet(2, 4, input_size=(32, 32), dims=2, channels=(8, 16))
        net(torch.rand(10, 3, 2, 32, 32)).logits.shape   # (3, 4)
    """

    arch_name = "spiking_convnet"

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        input_size: int | Sequence[int],
        dims: int = 2,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        pool: int = 2,
        hidden: int = 0,
        beta: float = 0.9,
        v_th: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "atan",
        learn_beta: bool = False,
    ) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"SpikingConvNet dims {dims}: use 1 (signals) or 2 (images)")
        size = [int(input_size)] * dims if isinstance(input_size, int) else [int(s) for s in input_size]
        if len(size) != dims:
            raise ValueError(f"SpikingConvNet input_size {input_size}: need {dims} value(s) for dims={dims}")
        kw = _lif_kwargs(beta, v_th, reset, surrogate, learn_beta)
        conv = SpikingConv1d if dims == 1 else SpikingConv2d
        pool_cls = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
        layers: list[nn.Module] = []
        c = in_channels
        for co in channels:
            layers.append(conv(c, int(co), kernel_size, **kw))
            c = int(co)
            size = [-(-s // pool) for s in size]  # ceil_mode pooling
        self.n_conv = len(channels)
        self.pools = nn.ModuleList(
            pool_cls(pool, ceil_mode=True) if pool > 1 else nn.Identity() for _ in channels
        )
        flat = c * int(torch.tensor(size).prod())
        if hidden:
            layers.append(SpikingLinear(flat, hidden, **kw))
            flat = hidden
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(flat, n_classes)
        self._arch = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "input_size": _size_list(input_size),
            "dims": dims,
            "channels": [int(x) for x in channels],
            "kernel_size": kernel_size,
            "pool": pool,
            "hidden": hidden,
            **kw,
        }

    def _between(self, i: int, spikes: Tensor) -> Tensor:
        if i < self.n_conv:
            spikes = self.pools[i](spikes)
            if i == self.n_conv - 1:
                spikes = spikes.flatten(1)
        return spikes


def _size_list(input_size: int | Sequence[int]) -> list[int]:
    return [int(input_size)] if isinstance(input_size, int) else [int(s) for s in input_size]
