"""The backend interface (Lava-style tags): a Backend maps a torch model onto emulated hardware."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from sim_hw.config import describe_config
from sim_hw.cost import CostReport, LayerCost
from sim_hw.errors import BackendConfigError
from sim_hw.mapped import SUPPORTED_MODULES, HardwareLayer

__all__ = ["Backend", "Capture", "HardwareModel"]


class Backend(ABC):
    """A hardware target chosen by tag (`ideal`, `rram`, `loas`) with a frozen parameter record.

    `prepare(model)` copies the model and replaces every nn.Linear / nn.Conv1d / nn.Conv2d with an
    emulated layer (weights are programmed once, here). Everything else (neurons, pooling, norms)
    stays plain torch: a spiking layer is a Linear/Conv followed by a neuron, so wrapping the
    Linear/Conv is enough.

    Example:
        >>> hw = make_backend("rram", adc_bits=6).prepare(torch.nn.Linear(8, 4))
        >>> y, cost = hw.run(torch.randn(2, 8))
    """

    kind: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def params(self) -> dict[str, Any]:
        return describe_config(self.config)

    @abstractmethod
    def wrap(self, module: nn.Module, name: str, index: int) -> HardwareLayer:
        """The emulated replacement of one supported module; `index` numbers layers (for seeding)."""

    def cost_mvm(
        self,
        rows: int,
        cols: int,
        n: int = 1,
        phase: str = "learning",
        name: str = "mvm",
        input_bits: int | None = None,
    ) -> CostReport:
        """Cost of `n` extra matrix-vector products with a `rows`×`cols` matrix (e.g. DFA's B·e feedback)
        without computing anything. The base version counts MACs only (an ideal processor)."""
        return CostReport(
            [LayerCost(name, phase, {}, macs=int(rows) * int(cols) * int(n), calls=int(n))], backend=self.kind
        )

    def prepare(self, model: nn.Module) -> HardwareModel:
        """Copy `model`, map its Linear/Conv layers onto this backend, and return the wrapped model."""
        if not isinstance(model, nn.Module):
            raise BackendConfigError(f"prepare() needs a torch.nn.Module, got {type(model).__name__}")
        model = copy.deepcopy(model)
        index = 0
        if isinstance(model, SUPPORTED_MODULES):
            layer = self.wrap(model, "layer", 0)
            return HardwareModel(layer, self)
        for qual_name, module in list(model.named_modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, SUPPORTED_MODULES):
                    full = f"{qual_name}.{child_name}" if qual_name else child_name
                    setattr(module, child_name, self.wrap(child, full, index))
                    index += 1
        return HardwareModel(model, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


@dataclass
class Capture:
    """What the hardware spent inside one `HardwareModel.capture()` block.

    `cost` is empty while the block runs and holds the block's `CostReport` (pJ, ns, mm², MACs per
    layer and phase) once it exits: every layer's records, then the `add_cost` charges made in it.
    """

    cost: CostReport = field(default_factory=CostReport)


class HardwareModel(nn.Module):
    """A model whose Linear/Conv layers run on an emulated backend; it also collects their cost.

    `forward(x)` is the model's forward with hardware-affected layers. `run(x)` returns
    `(y, CostReport)` for that call only; `capture()` gives the cost of any block of work (a
    learning step's transposed reads and writes); `cost()` returns everything since `reset_cost()`
    (an SNN calls its layers T times per sample; costs accumulate). `age(seconds)` lets time
    pass on every layer (drift). `layer(name)` reaches one emulated layer (e.g. an RRAMLayer, a
    `ProgrammableLayer`, for on-device learning).

    Example:
        >>> hw = make_backend("rram").prepare(torch.nn.Linear(8, 4))
        >>> with hw.capture() as cap:
        ...     hw.layer("layer").program_update(torch.full((4, 8), 0.01))
        >>> cap.cost.layer("layer", "learning").energy_total_pj > 0
        True
    """

    def __init__(self, model: nn.Module, backend: Backend) -> None:
        super().__init__()
        self.model = model
        self.backend = backend
        self._extra = CostReport()
        self._open: list[CostReport] = []  # add_cost charges per open capture()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def hw_layers(self) -> Iterator[HardwareLayer]:
        for m in self.model.modules():
            if isinstance(m, HardwareLayer):
                yield m

    def layers(self) -> dict[str, HardwareLayer]:
        return {m.hw_name: m for m in self.hw_layers()}

    def layer(self, name: str) -> HardwareLayer:
        layers = self.layers()
        if name not in layers:
            raise KeyError(f"no emulated layer named {name!r}; layers: {', '.join(layers) or 'none'}")
        return layers[name]

    @contextmanager
    def capture(self) -> Iterator[Capture]:
        """Collect what every layer records inside the block (and what `add_cost` charges there).

        Captures may nest; each sees everything recorded while it is open. Buffered work (LoAS
        windows) is flushed when the block exits, so it is costed in the block that did it.
        """
        layers = list(self.hw_layers())
        cap = Capture(CostReport(backend=self.backend.kind))
        extra = CostReport()
        for m in layers:
            m.begin_run()
        self._open.append(extra)
        try:
            yield cap
        finally:
            self._open = [o for o in self._open if o is not extra]
            reports = [m.end_run() for m in layers]
            cap.cost = CostReport([c for r in [*reports, extra] for c in r.layers], backend=self.backend.kind)

    @torch.no_grad()
    def run(self, *args: Any, **kwargs: Any) -> tuple[Any, CostReport]:
        """One forward pass without autograd, and the cost of exactly that pass."""
        with self.capture() as cap:
            y = self.model(*args, **kwargs)
        return y, cap.cost

    def cost(self) -> CostReport:
        out = CostReport(backend=self.backend.kind)
        for m in self.hw_layers():
            for c in m.cost().layers:
                out.add_layer(c)
        for c in self._extra.layers:
            out.add_layer(c)
        return out

    def add_cost(self, report: CostReport) -> None:
        """Charge extra work to this model (e.g. a DFA feedback MVM costed with `backend.cost_mvm`)."""
        for c in report.layers:
            self._extra.add_layer(c)
            for extra in self._open:
                extra.add_layer(c)

    def reset_cost(self) -> None:
        for m in self.hw_layers():
            m.reset_cost()
        self._extra = CostReport()

    def age(self, seconds: float) -> None:
        """Let `seconds` pass on every layer since the last age/programming (conductance drift)."""
        if seconds < 0:
            raise ValueError(f"age(seconds={seconds}): time only moves forward")
        for m in self.hw_layers():
            m.age(float(seconds))
