"""sim_hw: emulated neuromorphic hardware backends (ideal, RRAM crossbar, LoAS) with cost models.

A plain library: it imports torch, never the edgeloop runtime, nodes or models.
"""

from __future__ import annotations

from sim_hw.backend import Backend, Capture, HardwareModel
from sim_hw.cost import COMPONENTS, PHASES, CostReport, LayerCost
from sim_hw.errors import BackendConfigError, HardwareStateError
from sim_hw.geometry import ConvGeometry
from sim_hw.ideal import IdealBackend, IdealLayer
from sim_hw.loas import LoASBackend, LoASConfig, LoASLayer, run_layer
from sim_hw.mapped import HardwareLayer, MappedLayer
from sim_hw.programmable import ProgrammableLayer
from sim_hw.registry import BACKENDS, backend_params, make_backend, parse_backend_spec, resolve_backend_spec
from sim_hw.rram import RRAMBackend, RRAMConfig, RRAMLayer, RRAMLinear, calibrate

__all__ = [
    "Backend",
    "HardwareModel",
    "Capture",
    "HardwareLayer",
    "MappedLayer",
    "ConvGeometry",
    "ProgrammableLayer",
    "CostReport",
    "LayerCost",
    "PHASES",
    "COMPONENTS",
    "BackendConfigError",
    "HardwareStateError",
    "IdealBackend",
    "IdealLayer",
    "RRAMBackend",
    "RRAMConfig",
    "RRAMLayer",
    "RRAMLinear",
    "LoASBackend",
    "LoASConfig",
    "LoASLayer",
    "run_layer",
    "calibrate",
    "BACKENDS",
    "make_backend",
    "parse_backend_spec",
    "resolve_backend_spec",
    "backend_params",
]
