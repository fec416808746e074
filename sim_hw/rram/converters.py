"""DAC (input encoding into row pulses, bit-serial or multi-level) and ADC (column read-out) models."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sim_hw.rram.config import RRAMConfig

__all__ = ["EncodedInput", "encode_inputs", "adc_quantize", "is_binary"]


@dataclass
class EncodedInput:
    """Inputs as applied to the rows: x[n] ≈ scale[n] · Σ_p plane_weights[p] · planes[p, n].

    planes[P, N, K] hold row voltages normalised to [−1, 1] ({0, 1} for spikes; {−1, 0, 1} per bit
    in bit-serial mode, the sign being the pulse polarity), or integer DAC codes that
    `volts_per_unit` turns into such voltages (multi-level DAC). `input_bits` is what the buffer holds
    per input value.
    """

    planes: torch.Tensor
    plane_weights: torch.Tensor
    scale: torch.Tensor
    input_bits: int
    binary: bool
    volts_per_unit: float = 1.0  # planes × this = row voltage in [−1, 1] (multi-level DAC codes)


def is_binary(x: torch.Tensor) -> bool:
    """True when every value is 0 or 1 (spikes); one min/max pass rejects most analog inputs early."""
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    if float(lo) < 0 or float(hi) > 1:
        return False
    return bool(((x == 0) | (x == 1)).all())


def encode_inputs(x: torch.Tensor, cfg: RRAMConfig) -> EncodedInput:
    """Quantise x[N, K] with a `dac_bits` DAC (per-vector abs-max or fixed scaling).

    Binary inputs (spikes, all values 0 or 1) need no DAC levels: one plane, 1 bit per input.
    """
    n = x.shape[0]
    if is_binary(x):
        return EncodedInput(x.unsqueeze(0), torch.ones(1), torch.ones(n, 1), 1, True)
    if cfg.input_scaling == "abs_max":
        scale = x.abs().amax(dim=1, keepdim=True)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    else:
        scale = torch.full((n, 1), cfg.input_bound)
    if cfg.dac_bits == 0:
        return EncodedInput((x / scale).clamp_(-1, 1).unsqueeze(0), torch.ones(1), scale, 16, False)
    qmax = 2 ** (cfg.dac_bits - 1) - 1
    xi = (x * (qmax / scale)).round_().clamp_(-qmax, qmax)  # integer DAC codes
    if not cfg.bit_serial:
        # the row voltage is code/qmax of full scale; 1/qmax is folded into the plane weight
        return EncodedInput(
            xi.unsqueeze(0), torch.full((1,), 1.0 / qmax), scale, cfg.dac_bits, False, 1.0 / qmax
        )
    mag = xi.abs().to(torch.int64)
    sign = torch.sign(xi)
    nbits = cfg.dac_bits - 1
    planes = torch.stack([((mag >> p) & 1).to(x.dtype) * sign for p in range(nbits)])
    weights = torch.tensor([2.0**p / qmax for p in range(nbits)])
    return EncodedInput(planes, weights, scale, cfg.dac_bits, False)


def adc_quantize(ps: torch.Tensor, bound: torch.Tensor | float, bits: int) -> torch.Tensor:
    """Clip ps to ±bound and round to the 2**bits − 1 symmetric levels of a `bits`-bit ADC
    (step = bound / (2**(bits−1) − 1)); `bits == 0` is an ideal ADC (no clipping, no rounding).
    Works in place on `ps`."""
    if bits == 0:
        return ps
    half = 2 ** (bits - 1) - 1
    step = bound / half if isinstance(bound, float) else bound / float(half)
    return ps.div_(step).clamp_(-half, half).round_().mul_(step)  # in place: ps is a temporary
