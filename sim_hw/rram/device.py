"""RRAM device state: programmed conductances with noise, variation, stuck-at faults, drift and IR drop."""

from __future__ import annotations

import torch

from sim_hw.rram.config import RRAMConfig

__all__ = ["DeviceArray"]

_OK, _STUCK_OFF, _STUCK_ON = 0, 1, 2


class DeviceArray:
    """All cells of one layer, shape [S, 2, K, M] (slice, +/− device of the pair, row, weight column).

    Programming: G = g_min + gain·(d/(L−1))·(g_max − g_min) + σ_prog·(g_max − g_min)·N(0, 1),
    clipped at 0 µS; `gain` ~ N(1, d2d_variation) is fixed per device. Drift after programming at
    t_p: G(t) = G_prog·(max(t − t_p, t0)/t0)^(−ν), ν ~ N(drift_nu, drift_nu_std) per device, so
    conductance never grows with age. Stuck devices sit at g_min (off) or g_max (on) for good.

    Example: `DeviceArray(RRAMConfig(), digits, torch.Generator()).conductance()` → µS tensor.
    """

    def __init__(self, cfg: RRAMConfig, digits: torch.Tensor, gen: torch.Generator) -> None:
        self.cfg, self.gen = cfg, gen
        self.range_us = cfg.g_max_us - cfg.g_min_us
        shape = digits.shape
        self.gain = (1 + cfg.d2d_variation * torch.randn(shape, generator=gen)).clamp_(min=0)
        self.nu = (cfg.drift_nu + cfg.drift_nu_std * torch.randn(shape, generator=gen)).clamp_(min=0)
        u = torch.rand(shape, generator=gen)
        self.stuck = torch.full(shape, _OK, dtype=torch.int8)
        self.stuck[u < cfg.p_stuck_off] = _STUCK_OFF
        self.stuck[(u >= cfg.p_stuck_off) & (u < cfg.p_stuck_off + cfg.p_stuck_on)] = _STUCK_ON
        self.t_prog = torch.zeros(shape, dtype=torch.float64)
        self.clock_s = 0.0
        self.digits = digits.clone()
        self.g_prog = torch.zeros(shape)
        self.program(digits, cfg.prog_noise, torch.ones(shape, dtype=torch.bool))

    @property
    def fault_counts(self) -> dict[str, int]:
        return {
            "stuck_off": int((self.stuck == _STUCK_OFF).sum()),
            "stuck_on": int((self.stuck == _STUCK_ON).sum()),
            "devices": int(self.stuck.numel()),
        }

    def target_us(self, digits: torch.Tensor) -> torch.Tensor:
        levels = self.cfg.levels_per_cell
        return self.cfg.g_min_us + self.gain * (digits.to(torch.float32) / (levels - 1)) * self.range_us

    def program(self, digits: torch.Tensor, noise: float, mask: torch.Tensor) -> None:
        """Write `digits` into the devices selected by `mask` (stuck devices ignore it), with σ = noise."""
        mask = mask & (self.stuck == _OK)
        target = self.target_us(digits)
        noisy = (target + noise * self.range_us * torch.randn(target.shape, generator=self.gen)).clamp_(min=0)
        self.g_prog = torch.where(mask, noisy, self.g_prog)
        self.digits = torch.where(mask, digits, self.digits)
        self.t_prog = torch.where(mask, torch.full_like(self.t_prog, self.clock_s), self.t_prog)

    def age(self, seconds: float) -> None:
        self.clock_s += float(seconds)

    def conductance(self, drift: bool = True) -> torch.Tensor:
        """Conductances now (µS), [S, 2, K, M]; `drift=False` gives the as-programmed values."""
        g = self.g_prog
        if drift and self.cfg.drift_nu + self.cfg.drift_nu_std > 0 and self.clock_s > 0:
            t0 = self.cfg.drift_t0_s
            elapsed = (self.clock_s - self.t_prog).clamp(min=t0) / t0
            g = g * torch.pow(elapsed, -self.nu.to(torch.float64)).to(torch.float32)
        g = torch.where(self.stuck == _STUCK_OFF, torch.full_like(g, self.cfg.g_min_us), g)
        g = torch.where(self.stuck == _STUCK_ON, torch.full_like(g, self.cfg.g_max_us), g)
        if self.cfg.ir_drop > 0:
            g = g * self._ir_attenuation(g)
        return g

    def _ir_attenuation(self, g: torch.Tensor) -> torch.Tensor:
        """First-order IR drop: a cell far from the row driver and the column's sense amplifier, in a
        heavily loaded column, sees less voltage: factor 1 − ir_drop·load·(row_pos + col_pos)/2, with
        positions in [0, 1) inside the tile and load = mean G/g_max of the column within the tile."""
        cfg = self.cfg
        s, _, k, m = g.shape
        rows = cfg.tile_rows
        row_pos = (torch.arange(k) % rows).float() / rows  # [K]
        wpt = cfg.tile_cols // (2 * s)
        col_index = (torch.arange(m) % wpt).view(1, 1, m) * 2 * s + 2 * torch.arange(s).view(s, 1, 1)
        col_pos = (col_index + torch.arange(2).view(1, 2, 1)).float() / cfg.tile_cols  # [S, 2, M]
        pad = (-k) % rows
        gp = torch.nn.functional.pad(g, (0, 0, 0, pad)).view(s, 2, -1, rows, m)
        load = (gp.mean(dim=3, keepdim=True) / cfg.g_max_us).expand_as(gp).reshape(s, 2, -1, m)[:, :, :k]
        pos = (row_pos.view(1, 1, k, 1) + col_pos.view(s, 2, 1, m)) / 2
        return (1 - cfg.ir_drop * load * pos).clamp_(min=0)
