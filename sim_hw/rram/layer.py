"""RRAMLayer: a Linear/Conv layer programmed into crossbar tiles, with noisy reads, ADCs and write costs."""

from __future__ import annotations

import torch
from torch import nn

from sim_hw.cost import CostReport
from sim_hw.errors import HardwareStateError
from sim_hw.mapped import MappedLayer, module_weight, weight_matrix
from sim_hw.rram.config import RRAMConfig
from sim_hw.rram.converters import EncodedInput, adc_quantize, encode_inputs
from sim_hw.rram.device import DeviceArray
from sim_hw.rram.energy import MvmActivity, RRAMCostModel
from sim_hw.rram.mapping import digits_to_int, quantize_weights, round_update, to_digits

__all__ = ["RRAMLayer", "RRAMLinear"]


class RRAMLayer(MappedLayer):
    """A Linear/Conv1d/Conv2d whose weights live in RRAM crossbar tiles.

    Forward, per bit plane p of the DAC-encoded input, slice s and row group c (a tile's rows,
    or `parallel_rows` of them):
        ps[c, s, m] = Σ_{k∈c} x_p[k]·(G+[s,k,m] − G−[s,k,m])/(g_max − g_min)  + read + output noise
        y[m] = scale_x · scale_w[m] · α · Σ_p w_p Σ_s L^s (L−1) Σ_c ADC(ps[c, s, m])
    with α the global drift compensation. Read noise (σ per device per access) is applied in its
    exact output-referred form: N(0, 2σ²·Σ_k x_p[k]²) per pair column.

    Shapes: x[N, K] → y[N, M] inside (Linear/Conv reshaping done by MappedLayer).
    On-device learning goes through `ProgrammableLayer` (`mvm_transposed`, `program_update`,
    `read_weights`): transposed reads use the same devices, DACs, ADCs and noise; updates are
    conductance pulses.
    Example:
        >>> layer = RRAMLayer(torch.nn.Linear(16, 4), "fc", RRAMConfig(), index=0)
        >>> layer(torch.randn(3, 16)).shape
        torch.Size([3, 4])
    """

    _t: tuple[torch.Tensor, torch.Tensor] | None

    def __init__(self, module: nn.Module, name: str, cfg: RRAMConfig, index: int = 0) -> None:
        super().__init__(module, name)
        self.cfg = cfg
        self.weight_shape = tuple(module_weight(module).shape)
        self.gen = torch.Generator().manual_seed(int(cfg.seed) * 1_000_003 + int(index))
        self.cost_model = RRAMCostModel(cfg, self.in_features, self.out_features)
        self._cost_t: RRAMCostModel | None = None
        self._calib: torch.Tensor | None = None
        self._calibrating = False
        q, scale = quantize_weights(weight_matrix(module).float(), cfg.weight_bits, cfg.weight_scaling)
        self.w_scale = scale
        self.q = q
        self.devices = DeviceArray(cfg, to_digits(q, cfg.bits_per_cell, cfg.n_slices), self.gen)
        self._refresh()

    # ----- state derived from the devices -------------------------------------------------------
    def _refresh(self) -> None:
        """Recompute the normalised conductance differences and everything cached from them."""
        cfg = self.cfg
        g = self.devices.conductance()
        rng = self.devices.range_us
        self._d = (g[:, 0] - g[:, 1]) / rng  # [S, K, M]
        if cfg.drift_compensation:
            g0 = self.devices.conductance(drift=False)
            ref = ((g0[:, 0] - g0[:, 1]) / rng).abs().sum()
            now = self._d.abs().sum()
            self.alpha = float(ref / now) if now > 0 else 1.0
        else:
            self.alpha = 1.0
        self._row_g = g.sum(dim=(0, 1, 3))  # [K] µS summed over the row's cells
        ideal = (self.devices.digits[:, 0] - self.devices.digits[:, 1]).float() / (cfg.levels_per_cell - 1)
        self._fwd = self._chunked(self._d, cfg.rows_per_conversion)
        self._fwd_bound = self._chunked(ideal.abs(), cfg.rows_per_conversion).sum(1, keepdim=True)
        self._t = None  # transposed view, built on demand

    @staticmethod
    def _chunked(d: torch.Tensor, rows: int) -> torch.Tensor:
        """[S, K, M] → [C, rows, S·M] with K zero-padded to whole row groups."""
        s, k, m = d.shape
        pad = (-k) % rows
        d = torch.nn.functional.pad(d, (0, 0, 0, pad))
        return d.view(s, -1, rows, m).permute(1, 2, 0, 3).reshape(-1, rows, s * m).contiguous()

    def _bound(self, worst: torch.Tensor) -> torch.Tensor | float:
        if self._calib is not None:
            return self._calib
        if self.cfg.adc_bound > 0:
            return float(self.cfg.adc_bound)
        return torch.where(worst > 0, worst, torch.ones_like(worst))

    # ----- the analog product -------------------------------------------------------------------
    def _analog(
        self, planes: torch.Tensor, chunks: torch.Tensor, worst: torch.Tensor, vpu: float = 1.0
    ) -> torch.Tensor:
        """planes[P, N, K] × chunks[C, r, S·M] → digitised partial sums summed over C: [P·N, S·M].

        Works in plane units (`vpu` volts per unit, 1 except for multi-level DAC codes): bounds and
        additive noise are divided by `vpu`; the per-device read noise keeps its form.
        """
        cfg = self.cfg
        p, n, k = planes.shape
        c, r, sm = chunks.shape
        x = planes.reshape(p * n, k)
        if c * r != k:
            x = torch.nn.functional.pad(x, (0, c * r - k))
        xc = x.view(p * n, c, r).transpose(0, 1)  # [C, PN, r]
        ps = torch.mm(x, chunks[0]).unsqueeze(0) if c == 1 else torch.bmm(xc, chunks)  # [C, PN, S·M]
        if cfg.read_noise > 0:
            std = (
                2 * cfg.read_noise**2 * (xc * xc).sum(-1, keepdim=True) + (cfg.out_noise / vpu) ** 2
            ).sqrt_()
            ps.addcmul_(std, torch.randn(ps.shape, generator=self.gen))
        elif cfg.out_noise > 0:
            ps.add_(torch.randn(ps.shape, generator=self.gen), alpha=cfg.out_noise / vpu)
        if self._calibrating:
            peak = ps.abs().amax(dim=1, keepdim=True) * vpu
            self._calib_peak = peak if self._calib_peak is None else torch.maximum(self._calib_peak, peak)
            return ps.sum(0)
        bound = self._bound(worst)
        digital = adc_quantize(ps, bound / vpu if vpu != 1.0 else bound, cfg.adc_bits)
        return digital[0] if c == 1 else digital.sum(0)

    def _combine(
        self, digital: torch.Tensor, enc_weights: torch.Tensor, p: int, n: int, m: int
    ) -> torch.Tensor:
        s = self.cfg.n_slices
        levels = self.cfg.levels_per_cell
        if p == 1 and s == 1:
            return digital.mul_(float(enc_weights[0]) * (levels - 1))
        slice_w = torch.tensor([float(levels**i) * (levels - 1) for i in range(s)])
        return torch.einsum("pnsm,p,s->nm", digital.view(p, n, s, m), enc_weights, slice_w)

    def _mvm(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        enc = encode_inputs(x, self.cfg)
        p, n, _ = enc.planes.shape
        digital = self._analog(enc.planes, self._fwd, self._fwd_bound, enc.volts_per_unit)
        y = self._combine(digital, enc.plane_weights, p, n, self.out_features)
        y = y.mul_(enc.scale).mul_(self.w_scale * self.alpha)
        self._record(
            self.cost_model.inference(self.hw_name, self._activity(enc, self._row_g, self.cost_model))
        )
        return y

    def _activity(self, enc: EncodedInput, row_g: torch.Tensor, model: RRAMCostModel) -> MvmActivity:
        planes = enc.planes
        p, n, k = planes.shape
        flat = planes.reshape(p * n, k)
        sq = flat.square().sum(0) * enc.volts_per_unit**2  # Σ (V/V_read)² per row
        return MvmActivity(
            n_vectors=n,
            planes=p,
            dac_events=float(torch.count_nonzero(flat)) * model.col_tiles,
            array_g_v2=float(sq @ row_g),
            input_bits=enc.input_bits,
        )

    # ----- learning hooks -----------------------------------------------------------------------
    def read_weights(self) -> torch.Tensor:
        """The effective weights the hardware holds now (noise, drift, faults, compensation), in the
        original module's weight shape."""
        levels = self.cfg.levels_per_cell
        slice_w = torch.tensor([float(levels**i) * (levels - 1) for i in range(self.cfg.n_slices)]).view(
            -1, 1, 1
        )
        w = (self._d * slice_w).sum(0).t() * (self.w_scale[:, None] * self.alpha)
        return w.reshape(self.weight_shape)

    def target_weights(self) -> torch.Tensor:
        """The quantised weights the devices were told to hold (no noise), original weight shape."""
        return (self.q * self.w_scale[:, None]).reshape(self.weight_shape)

    @property
    def fault_counts(self) -> dict[str, int]:
        return self.devices.fault_counts

    def mvm_transposed(self, e: torch.Tensor, phase: str = "learning") -> torch.Tensor:
        """e[N, M] → e·W [N, K] read through the same devices driven from the columns (what BP needs),
        with the same DAC/ADC/noise model, and costed in `phase`."""
        if e.shape[-1] != self.out_features:
            raise HardwareStateError(
                f"layer {self.hw_name!r}: mvm_transposed needs {self.out_features} "
                f"features, got {e.shape[-1]}"
            )
        cfg = self.cfg
        if self._t is None:
            wpt = cfg.tile_cols // (2 * cfg.n_slices)
            dt = self._d.transpose(1, 2)  # [S, M, K]
            ideal = (self.devices.digits[:, 0] - self.devices.digits[:, 1]).float().transpose(1, 2)
            ideal = ideal / (cfg.levels_per_cell - 1)
            self._t = (self._chunked(dt, wpt), self._chunked(ideal.abs(), wpt).sum(1, keepdim=True))
            self._cost_t = RRAMCostModel(cfg, self.out_features, self.in_features)
        chunks, worst = self._t
        lead = e.shape[:-1]
        e2 = e.reshape(-1, self.out_features).float() * self.w_scale  # fold the column scales in digitally
        enc = encode_inputs(e2, cfg)
        p, n, _ = enc.planes.shape
        saved, self._calib = self._calib, None
        try:
            digital = self._analog(enc.planes, chunks, worst, enc.volts_per_unit)
        finally:
            self._calib = saved
        y = self._combine(digital, enc.plane_weights, p, n, self.in_features) * enc.scale * self.alpha
        assert self._cost_t is not None  # set together with self._t
        row_g = self.devices.conductance().sum(dim=(0, 1, 2))  # [M]: the driven lines are now columns
        cost = self._cost_t.inference(f"{self.hw_name}.T", self._activity(enc, row_g, self._cost_t))
        cost.phase = phase
        self._record(cost)
        return y.reshape(*lead, self.in_features)

    def program_update(self, delta_w: torch.Tensor, phase: str = "learning") -> CostReport:
        """Add delta_w (original weight shape or [M, K]) by programming conductance steps.

        The update is expressed in weight LSBs, rounded onto the integer grid (`update_rounding`),
        clipped to the weight range, re-sliced, and every device whose digit changes gets one pulse
        per level moved, landing with σ = update_noise. Costs write energy and latency in `phase`.
        """
        dw = delta_w.detach().float().reshape(self.out_features, self.in_features)
        cfg = self.cfg
        qmax = 2 ** (cfg.weight_bits - 1) - 1
        step = round_update(dw / self.w_scale[:, None], cfg.update_rounding, self.gen)
        q_new = torch.clamp(self.q + step, -qmax, qmax)
        return self._write(q_new, phase)

    def program_weights(self, w: torch.Tensor, phase: str = "learning") -> CostReport:
        """Reprogram every weight to `w` (new scales), costed as the level changes it takes."""
        q_new, scale = quantize_weights(
            w.detach().float().reshape(self.out_features, -1), self.cfg.weight_bits, self.cfg.weight_scaling
        )
        self.w_scale = scale
        return self._write(q_new, phase)

    def _write(self, q_new: torch.Tensor, phase: str) -> CostReport:
        cfg = self.cfg
        new_digits = to_digits(q_new, cfg.bits_per_cell, cfg.n_slices)
        moved = (new_digits - self.devices.digits).abs()
        changed = moved > 0
        self.devices.program(new_digits, cfg.update_noise, changed)
        self.q = digits_to_int(self.devices.digits, cfg.bits_per_cell)
        per_row = moved.amax(dim=(0, 1, 3)).float()  # [K] slowest cell of each row
        cost = self.cost_model.write(
            self.hw_name,
            float(moved.sum()),
            cfg.g_max_us,
            int((per_row > 0).sum()),
            float(per_row.sum()),
            phase,
        )
        self._refresh()
        self._record(cost)
        return CostReport([cost], backend="rram")

    # ----- time and calibration -----------------------------------------------------------------
    def age(self, seconds: float) -> None:
        self.devices.age(seconds)
        self._refresh()

    def start_calibration(self) -> None:
        self._calibrating, self._calib_peak = True, None

    def finish_calibration(self) -> None:
        """Set each ADC's full scale to the largest partial sum seen since `start_calibration()`."""
        self._calibrating = False
        peak = self._calib_peak
        if peak is not None:
            self._calib = torch.where(peak > 0, peak, torch.ones_like(peak))
        self._calib_peak = None

    _calib_peak: torch.Tensor | None = None


RRAMLinear = RRAMLayer  # the name on-device-learning code expects; one class serves Linear and Conv
