"""Per-operation energy, latency and area of an RRAM crossbar tile, each constant with its published source."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim_hw.cost import LayerCost
from sim_hw.rram.config import RRAMConfig
from sim_hw.technology import area_scale, energy_scale

__all__ = ["PeripheralCosts", "RRAMCostModel", "MvmActivity"]

# --- ISAAC components at 32 nm [Accelergy-Project/hwcomponents-library hwcomponents_library/library/isaac.py;
#     Shafiee et al., ISCA 2016]. SAR ADC pJ/conversion by resolution (Kull et al. ISSCC 2013, scaled by
#     Saberi et al. 2011 inside that file), and area in µm².
_ISAAC_NM = 32.0
_ISAAC_ADC_PJ = {4: 0.79, 5: 0.99, 6: 1.20, 7: 1.42, 8: 1.67, 9: 1.969078145, 10: 2.379022742}
_ISAAC_ADC_UM2 = {4: 361.04, 5: 476.91, 6: 626.91, 7: 845.18, 8: 1200.0, 9: 1827.911647, 10: 3002.008032}
_ISAAC_ADC_RATE_GS = 1.2  # conversions per ns at 8 bits (1.2 GS/s); latency scales linearly with bits
_ISAAC_DAC_1B_PJ = 0.41667  # 1-bit DAC (row driver) per conversion; energy/area ∝ 2**bits
_ISAAC_DAC_1B_UM2 = 0.166015625
_ISAAC_SHIFT_ADD_PJ = 0.021  # 16-bit shift-and-add
_ISAAC_SHIFT_ADD_UM2 = 60.0
_ISAAC_EDRAM_PJ_PER_BIT = 20.45 / 256  # eDRAM buffer, 256-bit access = 20.45 pJ
# --- NeuRRAM components at 130 nm [hwcomponents-library neurram.py; Wan et al., Nature 608:504 (2022)].
_NEURRAM_NM = 130.0
_NEURRAM_ADC_PJ = 0.3  # variable-precision (integrate-and-fire) ADC per conversion
_NEURRAM_ADC_UM2 = 400.0
_NEURRAM_SHIFT_ADD_PJ = 0.1
_NEURRAM_SHIFT_ADD_UM2 = 170.0
# --- cell geometry: 1T1R cell 4F × 12F with F = 40 nm wire width at 22 nm (NeuroSim V1.4 Param.cpp).
_CELL_F2 = 4 * 12
_F_PER_NODE = 40.0 / 22.0
_OUT_BITS = 16  # digital output word written back to the buffer


def _adc_table_value(table: dict[int, float], bits: int) -> float:
    """Value at `bits`, extrapolated ∝ 2**bits outside the published 4..10-bit range."""
    if bits in table:
        return table[bits]
    edge = 4 if bits < 4 else 10
    return table[edge] * 2.0 ** (bits - edge)


@dataclass(frozen=True)
class PeripheralCosts:
    """Per-operation costs at the configured node (pJ, ns, µm²)."""

    adc_pj: float
    adc_ns: float
    adc_um2: float
    dac_pj: float
    dac_um2: float
    shift_add_pj: float
    shift_add_um2: float
    buffer_pj_per_bit: float
    cell_um2: float

    @classmethod
    def from_config(cls, cfg: RRAMConfig) -> PeripheralCosts:
        bits = cfg.adc_bits or 8  # an ideal ADC is costed as an 8-bit one
        dac_bits = 1 if cfg.bit_serial or cfg.dac_bits == 0 else cfg.dac_bits
        e32, a32 = energy_scale(_ISAAC_NM, cfg.tech_nm), area_scale(_ISAAC_NM, cfg.tech_nm)
        adc_ns = bits / 8.0 / _ISAAC_ADC_RATE_GS
        if cfg.cost_preset == "neurram":
            e130, a130 = energy_scale(_NEURRAM_NM, cfg.tech_nm), area_scale(_NEURRAM_NM, cfg.tech_nm)
            adc_pj, adc_um2 = _NEURRAM_ADC_PJ * e130, _NEURRAM_ADC_UM2 * a130
            sa_pj, sa_um2 = _NEURRAM_SHIFT_ADD_PJ * e130, _NEURRAM_SHIFT_ADD_UM2 * a130
        else:
            adc_pj, adc_um2 = (
                _adc_table_value(_ISAAC_ADC_PJ, bits) * e32,
                _adc_table_value(_ISAAC_ADC_UM2, bits) * a32,
            )
            sa_pj, sa_um2 = _ISAAC_SHIFT_ADD_PJ * e32, _ISAAC_SHIFT_ADD_UM2 * a32
        feature_um = cfg.tech_nm * _F_PER_NODE * 1e-3
        return cls(
            adc_pj=adc_pj,
            adc_ns=adc_ns,
            adc_um2=adc_um2,
            dac_pj=_ISAAC_DAC_1B_PJ * 2.0 ** (dac_bits - 1) * e32,
            dac_um2=_ISAAC_DAC_1B_UM2 * 2.0 ** (dac_bits - 1) * a32,
            shift_add_pj=sa_pj,
            shift_add_um2=sa_um2,
            buffer_pj_per_bit=_ISAAC_EDRAM_PJ_PER_BIT * e32,
            cell_um2=_CELL_F2 * feature_um**2,
        )


@dataclass
class MvmActivity:
    """What one batch of MVMs did on the array: the inputs to the cost model.

    `n_vectors` input vectors, each applied as `planes` bit planes; `dac_events` = non-zero row
    pulses (summed over planes, vectors and column tiles); `array_g_v2` = Σ over pulses of
    (V/V_read)²·(summed conductance of the driven row, µS).
    """

    n_vectors: int
    planes: int
    dac_events: float
    array_g_v2: float
    input_bits: int


class RRAMCostModel:
    """Energy/latency/area of a K×M weight matrix mapped onto tiles, from per-operation costs.

    Per MVM of one bit plane: each non-zero row pulse costs one DAC conversion and
    V²·G·t_read in every cell of its row; every row group (`parallel_rows`) of every tile does
    one ADC conversion and one shift-add per differential pair column. Tiles work in parallel;
    planes, row groups and input vectors are sequential. Latency per step = read pulse +
    (pairs per ADC) × ADC conversion time.
    """

    def __init__(self, cfg: RRAMConfig, k: int, m: int) -> None:
        self.cfg, self.k, self.m = cfg, k, m
        self.costs = PeripheralCosts.from_config(cfg)
        s = cfg.n_slices
        self.weights_per_tile_row = cfg.tile_cols // (2 * s)
        self.row_tiles = -(-k // cfg.tile_rows)
        self.col_tiles = -(-m // self.weights_per_tile_row)
        self.row_groups = -(-k // cfg.rows_per_conversion)
        self.pairs = m * s
        self.n_tiles = self.row_tiles * self.col_tiles
        self.adcs_per_tile = max(1, cfg.tile_cols // cfg.cols_per_adc)

    @property
    def utilisation(self) -> float:
        used = self.k * self.m * 2 * self.cfg.n_slices
        return used / (self.n_tiles * self.cfg.tile_rows * self.cfg.tile_cols)

    @property
    def area_mm2(self) -> float:
        c, cfg = self.costs, self.cfg
        tile_um2 = (
            cfg.tile_rows * cfg.tile_cols * c.cell_um2
            + self.adcs_per_tile * (c.adc_um2 + c.shift_add_um2)
            + cfg.tile_rows * c.dac_um2
        )
        return self.n_tiles * tile_um2 * 1e-6

    def step_ns(self) -> float:
        pairs_per_adc = math.ceil(self.cfg.tile_cols / 2 / self.adcs_per_tile)
        return self.cfg.read_pulse_ns + pairs_per_adc * self.costs.adc_ns

    def inference(self, name: str, act: MvmActivity) -> LayerCost:
        c, cfg = self.costs, self.cfg
        conversions = act.n_vectors * act.planes * self.row_groups * self.pairs
        energy = {
            "array": act.array_g_v2 * cfg.read_voltage**2 * cfg.read_pulse_ns * 1e-3,  # V²·µS·ns = 1e-3 pJ
            "dac": act.dac_events * c.dac_pj,
            "adc": conversions * c.adc_pj,
            "shift_add": (conversions + act.n_vectors * self.m * max(0, self.row_groups - 1))
            * c.shift_add_pj,
            "buffer": act.n_vectors * (self.k * act.input_bits + self.m * _OUT_BITS) * c.buffer_pj_per_bit,
        }
        groups_per_tile = min(self.row_groups, cfg.tile_rows // cfg.rows_per_conversion)
        latency = act.n_vectors * act.planes * groups_per_tile * self.step_ns()
        return LayerCost(
            name,
            "inference",
            energy,
            latency,
            self.area_mm2,
            self.utilisation,
            macs=act.n_vectors * self.k * self.m,
            calls=1,
            counts={
                "adc_conversions": conversions,
                "dac_events": act.dac_events,
                "vectors": act.n_vectors,
                "planes": act.planes * act.n_vectors,
            },
        )

    def write(
        self,
        name: str,
        pulses: float,
        g_pulse_us: float,
        rows_touched: int,
        row_steps: float,
        phase: str = "learning",
    ) -> LayerCost:
        """Programming: each pulse costs V_w²·G·t_w; rows are written one after another, a row's cells in
        parallel, so a row takes as many pulse slots as its busiest cell (`row_steps` sums them).
        The update values are read from the buffer at `weight_bits` per weight."""
        cfg, c = self.cfg, self.costs
        energy = {
            "write": pulses * cfg.write_voltage**2 * g_pulse_us * cfg.write_pulse_ns * 1e-3,
            "buffer": self.k * self.m * cfg.weight_bits * c.buffer_pj_per_bit,
        }
        latency = row_steps * cfg.write_pulse_ns
        return LayerCost(
            name,
            phase,
            energy,
            latency,
            self.area_mm2,
            self.utilisation,
            macs=0,
            counts={"write_pulses": pulses, "rows_written": rows_touched},
        )
