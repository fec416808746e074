"""CMOS technology scaling of per-operation energy and area between process nodes.

Published component costs come from chips in different nodes (ISAAC parts at 32 nm, NeuRRAM at
130 nm, NeuroSim's reference at 22 nm). We move them to one node with the Stillmaker & Baas
equations, the same tables Accelergy's `hwcomponents` uses.
"""

from __future__ import annotations

import math

__all__ = ["energy_scale", "area_scale", "SUPPORTED_NODES_NM"]

# Stillmaker & Baas, "Scaling equations for the accurate prediction of CMOS device performance
# from 180nm to 7nm", Integration 58 (2017) 74-81, as tabulated in
# Accelergy-Project/hwcomponents hwcomponents/scaling/techscaling.py.
SUPPORTED_NODES_NM: tuple[float, ...] = (130.0, 90.0, 65.0, 45.0, 32.0, 20.0, 16.0, 14.0, 10.0, 7.0)
_AREA = (
    (1, 0.44, 0.23, 0.16, 0.072, 0.033, 0.03, 0.027, 0.016, 0.0092),
    (2.3, 1, 0.53, 0.35, 0.16, 0.075, 0.067, 0.061, 0.036, 0.021),
    (4.3, 1.9, 1, 0.66, 0.31, 0.14, 0.13, 0.12, 0.068, 0.039),
    (6.4, 2.8, 1.5, 1, 0.46, 0.21, 0.19, 0.17, 0.1, 0.059),
    (14, 6.1, 3.3, 2.2, 1, 0.46, 0.41, 0.38, 0.22, 0.13),
    (30, 13, 7.1, 4.7, 2.2, 1, 0.89, 0.82, 0.48, 0.28),
    (34, 15, 7.9, 5.3, 2.4, 1.1, 1, 0.91, 0.54, 0.31),
    (37, 16, 8.7, 5.8, 2.7, 1.2, 1.1, 1, 0.59, 0.34),
    (63, 28, 15, 9.8, 4.5, 2.1, 1.9, 1.7, 1, 0.58),
    (110, 48, 25, 17, 7.8, 3.6, 3.2, 2.9, 1.7, 1),
)
# Energy per switch ∝ a·Vdd² + b·Vdd + c (per node row), same source.
_ENERGY = (
    (7.171, -6.709, 2.904),
    (4.762, -4.781, 2.092),
    (3.755, -4.398, 1.975),
    (1.103, -0.362, 0.2767),
    (0.9559, -0.7823, 0.471),
    (0.373, -0.1582, 0.04104),
    (0.2958, -0.1241, 0.03024),
    (0.2363, -0.09675, 0.02239),
    (0.2068, -0.09311, 0.02375),
    (0.1776, -0.09097, 0.02447),
)


def _index(node_nm: float) -> float:
    """Fractional index of `node_nm` in SUPPORTED_NODES_NM (linear interpolation between nodes)."""
    nodes = SUPPORTED_NODES_NM
    if not nodes[-1] <= node_nm <= nodes[0]:
        raise ValueError(f"technology node {node_nm} nm: supported range is {nodes[-1]:g}..{nodes[0]:g} nm")
    for i in range(len(nodes) - 1):
        hi, lo = nodes[i], nodes[i + 1]
        if lo <= node_nm <= hi:
            return i + (hi - node_nm) / (hi - lo)
    return float(len(nodes) - 1)


def _energy_factor(node_nm: float, vdd: float) -> float:
    x = _index(node_nm)
    lo, hi = math.floor(x), math.ceil(x)
    f = x - lo

    def poly(row: tuple[float, float, float]) -> float:
        return row[0] * vdd**2 + row[1] * vdd + row[2]

    return poly(_ENERGY[lo]) * (1 - f) + poly(_ENERGY[hi]) * f


def energy_scale(from_nm: float, to_nm: float, vdd: float = 0.8) -> float:
    """Factor that moves an energy measured at `from_nm` to `to_nm` (1.0 when equal).

    Example: `energy_scale(32, 22)` ≈ 0.45, so ISAAC's 0.79 pJ 4-bit ADC becomes ≈0.35 pJ at 22 nm.
    """
    return _energy_factor(to_nm, vdd) / _energy_factor(from_nm, vdd)


def area_scale(from_nm: float, to_nm: float) -> float:
    """Factor that moves an area measured at `from_nm` to `to_nm` (bilinear in the published table)."""
    x, y = _index(from_nm), _index(to_nm)
    xl, xh, yl, yh = math.floor(x), math.ceil(x), math.floor(y), math.ceil(y)
    fx, fy = x - xl, y - yl
    return (
        _AREA[xl][yl] * (1 - fx) * (1 - fy)
        + _AREA[xl][yh] * (1 - fx) * fy
        + _AREA[xh][yl] * fx * (1 - fy)
        + _AREA[xh][yh] * fx * fy
    )
