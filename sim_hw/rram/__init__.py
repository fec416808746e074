"""RRAM crossbar emulation: device physics, converters, tiles and their costs."""

from __future__ import annotations

from sim_hw.rram.backend import RRAMBackend, calibrate
from sim_hw.rram.config import RRAMConfig
from sim_hw.rram.device import DeviceArray
from sim_hw.rram.energy import PeripheralCosts, RRAMCostModel
from sim_hw.rram.layer import RRAMLayer, RRAMLinear

__all__ = [
    "RRAMBackend",
    "RRAMConfig",
    "RRAMLayer",
    "RRAMLinear",
    "DeviceArray",
    "PeripheralCosts",
    "RRAMCostModel",
    "calibrate",
]
