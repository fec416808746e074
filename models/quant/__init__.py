"""Weight quantization: RTN, GPTQ, GPTAQ (GPTQv2) and TesseraQ, 2–8 bits, per channel or grouped."""

from __future__ import annotations

from .calibrate import (
    METHODS,
    QuantConfig,
    QuantResult,
    apply_quant,
    layer_inputs,
    quantizable_layers,
    quantize_model,
)
from .gptq import LayerQuant, asymmetry_projection, gptaq, gptq, prepare_hessian, rtn_layer
from .quantizer import QuantError, QuantSpec, dequantize, fake_quant, fit_scale_zero, quantize_int, rtn
from .tesseraq import PAR_QUANTILES, TesseraQConfig, tesseraq, tesseraq_gram

__all__ = [
    "METHODS",
    "QuantConfig",
    "QuantResult",
    "apply_quant",
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
    "PAR_QUANTILES",
    "TesseraQConfig",
    "tesseraq",
    "tesseraq_gram",
]
