"""Parameters of the emulated LoAS accelerator and of the per-operation energies its model uses."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoASConfig"]


@dataclass(frozen=True)
class LoASConfig:
    """LoAS configuration (Yin et al., MICRO 2024, arXiv 2407.14073, Table III [2nd-hand, SCIENCE 3.3]).

    16 temporal-parallel PEs (TPPEs) at 800 MHz in 32 nm, 8-bit weights, a 256 KB 16-bank
    FiberCache, 128 GB/s HBM, T = 4. `timesteps` is also how many consecutive per-timestep layer
    calls the backend packs into one window. Energies in pJ.

    Example: `LoASConfig(timesteps=8).n_pe` → 16
    """

    timesteps: int = 4  # T (RuokaiYin/LoAS config_profile.py)
    n_pe: int = 16  # TPPEs
    freq_mhz: float = 800.0
    tech_nm: float = 32.0
    weight_bits: int = 8  # 0 = keep float weights (output then equals the float layer exactly)
    cache_kb: float = 256.0  # FiberCache
    dram_gbps: float = 128.0  # HBM bandwidth
    join_width: int = 128  # bitmask bits ANDed + fast prefix-summed per cycle
    slow_prefix_cycles: int = 8  # cycles per 128 bits of A's (stationary) prefix sum
    one_spike_mask: bool = False  # LoAS "strong" mode: drop neurons that fire once in the window
    analog_input_bits: int = 8  # non-spike inputs (a first layer) are costed bit-serially at this width
    # per-operation energies at 45 nm (Horowitz, "Computing's energy problem", ISSCC 2014), scaled to tech_nm
    sram_pj_per_64b: float = 14.1  # 16 KB bank: between 8 KB (10 pJ) and 32 KB (20 pJ) per 64-bit read [D]
    add_pj: float = 0.05  # ~16-bit integer add (8-bit 0.03 pJ, 32-bit 0.1 pJ)
    prefix_pj: float = 0.4  # one 128-bit AND + prefix-sum step [assumption: ≈ four 32-bit adds]
    lif_pj: float = 0.1  # one LIF update per timestep [assumption: ≈ a 32-bit add and compare]
    dram_pj_per_bit: float = 3.9  # HBM2 access energy (O'Connor et al., MICRO 2017); not node-scaled

    def validate(self) -> None:
        if not 1 <= self.timesteps <= 62:
            raise ValueError(f"timesteps={self.timesteps} must be in 1..62 (bits of one packed word)")
        if self.n_pe < 1 or self.freq_mhz <= 0 or self.cache_kb <= 0 or self.dram_gbps <= 0:
            raise ValueError("n_pe, freq_mhz, cache_kb and dram_gbps must be positive")
        if self.weight_bits != 0 and not 2 <= self.weight_bits <= 16:
            raise ValueError(f"weight_bits={self.weight_bits} must be 0 (float) or 2..16")
        if self.join_width < 1 or self.slow_prefix_cycles < 0 or self.analog_input_bits < 1:
            raise ValueError("join_width and analog_input_bits must be ≥ 1, slow_prefix_cycles ≥ 0")
        if not 7 <= self.tech_nm <= 130:
            raise ValueError(f"tech_nm={self.tech_nm} must be within 7..130")
