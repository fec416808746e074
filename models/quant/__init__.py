"""Weight quantization: RTN, GPTQ, GPTAQ (GPTQv2) and TesseraQ, 2–8 bits, per channel or grouped."""

from __future__ import annotations

from .calibrate import (
    METHODS,
    QuantConfig,
    QuantResult,
    apply_quant,
    auto_blocks,
    layer_inputs,
    quantizable_layers,
    quantize_model,
)
from .clip import awq_clip
from .gptq import LayerQuant, asymmetry_projection, gptaq, gptq, prepare_hessian, rtn_layer
from .quantizer import QuantError, QuantSpec, dequantize, fake_quant, fit_scale_zero, quantize_int, rtn
from .tesseraq import INITS, PAR_QUANTILES, SCALE_PARAMS, TesseraQConfig, tesseraq, tesseraq_gram

__all__ = [
    "METHODS",
    "QuantConfig",
    "QuantResult",
    "apply_quant",
    "auto_blocks",
    "awq_clip",
    "layer_inputs",
    "quantizable_layers",
    "quantize_model",
    "LayerQuant",
    "asymmetry_projection",
    "gptaq",
    "gptq",
    "prepare_hessian",
    "rtn_layer",
    "QuantError",
    "QuantSpec",
    "dequantize",
    "fake_quant",
    "fit_scale_zero",
    "quantize_int",
    "rtn",
    "INITS",
    "PAR_QUANTILES",
    "SCALE_PARAMS",
    "TesseraQConfig",
    "tesseraq",
    "tesseraq_gram",
]
