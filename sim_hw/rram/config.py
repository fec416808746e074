"""Parameters of the emulated RRAM crossbar (device, converters, tiles, costs), with their sources."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RRAMConfig"]


@dataclass(frozen=True)
class RRAMConfig:
    """Everything the `rram` backend can be told; all fields are `make_backend("rram", ...)` params.

    Mapping: a weight w[m, k] is quantised to a signed `weight_bits` integer q (scale per output
    channel or per layer), |q| is split into slices of `bits_per_cell` bits (levels per cell
    L = 2**bits_per_cell), and each slice s is a differential pair on two columns:
    G± = g_min + d±/(L−1)·(g_max − g_min), with d+ = digit if q > 0 else 0 (and the reverse for d−).
    The pair's currents are subtracted before the ADC (one conversion per pair).

    Conductances in µS, times in seconds / nanoseconds, energies in pJ, noise σ as a fraction of
    the conductance range g_max − g_min. Defaults follow DNN+NeuroSim V1.4 (Param.cpp: 128×128
    sub-arrays, 8 columns per ADC, Ron 100 kΩ, on/off 17, read 0.5 V for 10 ns, write 2 V, 22 nm)
    and ISAAC (2-bit cells, 1-bit DAC, bit-serial inputs).

    Example: `RRAMConfig(adc_bits=6, read_noise=0.0).tile_rows` → 128
    """

    # tiles
    tile_rows: int = 128  # NeuroSim numRowSubArray
    tile_cols: int = 128  # NeuroSim numColSubArray
    parallel_rows: int = 0  # rows summed per ADC conversion; 0 = all rows of a tile (NeuroSim numRowParallel)
    # weights → cells
    weight_bits: int = 8  # signed weight precision (sign + weight_bits−1 magnitude bits)
    bits_per_cell: int = 2  # ISAAC stores 2 bits per cell; NeuroSim's default cellBit is 1
    weight_scaling: str = "channel"  # "channel": one scale per output; "layer": one for the layer
    g_max_us: float = 10.0  # 1 / Ron, Ron = 100 kΩ (NeuroSim V1.4 Param.cpp)
    g_min_us: float = 10.0 / 17.0  # on/off ratio 17 (NeuroSim V1.4 Param.cpp)
    # inputs (DAC)
    dac_bits: int = 8  # signed input precision; 0 = no input quantisation
    bit_serial: bool = True  # one 1-bit row pulse per magnitude bit (ISAAC); False = multi-level DAC
    input_scaling: str = "abs_max"  # "abs_max": per-vector digital scale (aihwkit noise management); "fixed"
    input_bound: float = 1.0  # |x| range for input_scaling="fixed"
    # outputs (ADC)
    adc_bits: int = 8  # per-conversion resolution (≥ 2); 0 = ideal ADC (costed as 8-bit)
    adc_bound: float = 0.0  # full scale in normalised units (Σ x·Δg/Δg_range); 0 = each column's worst case
    cols_per_adc: int = 8  # columns multiplexed onto one ADC (NeuroSim numColMuxed)
    # non-idealities
    prog_noise: float = (
        0.03  # σ per device at programming; NeuRRAM data ≈1.1 µS of 40 µS (aihwkit ReRamWan2022)
    )
    read_noise: float = 0.01  # σ per device per read; aihwkit ReRamWan2022 docstring suggests w_noise ≈ 0.01
    out_noise: float = 0.0  # additive σ at each column before the ADC, normalised units (aihwkit out_noise)
    d2d_variation: float = 0.0  # σ of a fixed per-device gain on (G − g_min)
    drift_nu: float = (
        0.005  # mean drift exponent; [assumption] RRAM relaxes far less than PCM (ν≈0.05, aihwkit)
    )
    drift_nu_std: float = 0.002  # device-to-device σ of ν [assumption]
    drift_t0_s: float = 20.0  # drift reference time t0 (aihwkit PCMLikeNoiseModel t_0)
    drift_compensation: bool = True  # global digital rescale after drift (aihwkit GlobalDriftCompensation)
    p_stuck_off: float = 0.0  # fraction of devices stuck at g_min
    p_stuck_on: float = 0.0  # fraction of devices stuck at g_max
    ir_drop: float = 0.0  # first-order wire IR-drop strength (0 = off; ≈0.007 for NeuroSim 22 nm wires [D])
    # on-device learning (conductance programming)
    update_noise: float = 0.02  # σ per reprogrammed device per update [assumption]
    update_rounding: str = "stochastic"  # "stochastic" or "nearest" rounding of updates onto cell levels
    # costs
    tech_nm: float = 22.0  # NeuroSim V1.4 reference node; ISAAC parts (32 nm) are scaled to it
    cost_preset: str = "isaac"  # "isaac" (Accelergy ISAAC parts) or "neurram" (NeuRRAM ADC/shift-add)
    read_voltage: float = 0.5  # V (NeuroSim V1.4 readVoltage)
    read_pulse_ns: float = 10.0  # ns (NeuroSim V1.4 readPulseWidth)
    write_voltage: float = 2.0  # V (NeuroSim V1.4 writeVoltage)
    write_pulse_ns: float = 10.0  # ns [assumption: same as the read pulse]
    seed: int = 0

    @property
    def levels_per_cell(self) -> int:
        return int(2**self.bits_per_cell)

    @property
    def n_slices(self) -> int:
        mag = self.weight_bits - 1
        return max(1, -(-mag // self.bits_per_cell))

    @property
    def rows_per_conversion(self) -> int:
        return self.parallel_rows or self.tile_rows

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(self.tile_rows >= 1 and self.tile_cols >= 2, "tile_rows must be ≥ 1 and tile_cols ≥ 2")
        need(
            self.parallel_rows >= 0 and (self.parallel_rows == 0 or self.tile_rows % self.parallel_rows == 0),
            f"parallel_rows={self.parallel_rows} must be 0 or divide tile_rows={self.tile_rows}",
        )
        need(2 <= self.weight_bits <= 16, f"weight_bits={self.weight_bits} must be in 2..16")
        need(1 <= self.bits_per_cell <= 8, f"bits_per_cell={self.bits_per_cell} must be in 1..8")
        need(
            self.tile_cols >= 2 * self.n_slices,
            f"tile_cols={self.tile_cols} cannot hold one weight ({2 * self.n_slices} columns)",
        )
        need(
            self.weight_scaling in ("channel", "layer"),
            f"weight_scaling={self.weight_scaling!r}: use channel|layer",
        )
        need(
            0 <= self.g_min_us < self.g_max_us,
            f"need 0 ≤ g_min_us < g_max_us, got {self.g_min_us}, {self.g_max_us}",
        )
        need(self.dac_bits == 0 or 2 <= self.dac_bits <= 16, f"dac_bits={self.dac_bits} must be 0 or 2..16")
        need(
            self.input_scaling in ("abs_max", "fixed"),
            f"input_scaling={self.input_scaling!r}: use abs_max|fixed",
        )
        need(self.input_bound > 0, "input_bound must be > 0")
        need(self.adc_bits == 0 or 2 <= self.adc_bits <= 16, f"adc_bits={self.adc_bits} must be 0 or 2..16")
        need(self.adc_bound >= 0, "adc_bound must be ≥ 0 (0 = worst case per column)")
        need(self.cols_per_adc >= 1, "cols_per_adc must be ≥ 1")
        for name in (
            "prog_noise",
            "read_noise",
            "out_noise",
            "d2d_variation",
            "drift_nu_std",
            "ir_drop",
            "update_noise",
        ):
            need(getattr(self, name) >= 0, f"{name}={getattr(self, name)} must be ≥ 0")
        need(self.drift_t0_s > 0, "drift_t0_s must be > 0")
        need(
            0 <= self.p_stuck_off and 0 <= self.p_stuck_on and self.p_stuck_off + self.p_stuck_on <= 1,
            "p_stuck_off and p_stuck_on must be fractions that sum to ≤ 1",
        )
        need(self.update_rounding in ("stochastic", "nearest"), "update_rounding: use stochastic|nearest")
        need(7 <= self.tech_nm <= 130, f"tech_nm={self.tech_nm} must be within 7..130")
        need(self.cost_preset in ("isaac", "neurram"), f"cost_preset={self.cost_preset!r}: use isaac|neurram")
        for name in ("read_voltage", "read_pulse_ns", "write_voltage", "write_pulse_ns"):
            need(getattr(self, name) > 0, f"{name} must be > 0")
