"""models: spiking networks, event2vec, quantizers (RTN, GPTQ, GPTAQ, TesseraQ), DFA learning, ONNX export.

A plain library (torch, onnx, onnxruntime; may use sim_hw), never importing the runtime or nodes.
Subpackages: `models.snn`, `models.event2vec`, `models.quant`, `models.adapt`; modules `models.io`
(model files), `models.train` (training loops), `models.onnx_export`, `models.mlp`.
"""

from __future__ import annotations

from .io import BUILDERS, Checkpoint, ModelFileError, build_model, load_checkpoint, load_model, save_model

__all__ = [
    "BUILDERS",
    "Checkpoint",
    "ModelFileError",
    "build_model",
    "load_checkpoint",
    "load_model",
    "save_model",
]
