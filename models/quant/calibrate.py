"""Quantize a whole model layer by layer, calibrated through forward hooks (RTN, GPTQ, GPTAQ, TesseraQ)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sim_hw.geometry import ConvGeometry

from .gptq import LayerQuant, gptaq, gptq, rtn_layer
from .quantizer import QuantError, QuantSpec
from .tesseraq import TesseraQConfig, tesseraq_block, tesseraq_gram

__all__ = [
    "METHODS",
    "QuantConfig",
    "QuantResult",
    "quantize_model",
    "quantizable_layers",
    "layer_inputs",
    "apply_quant",
    "auto_blocks",
]

METHODS = ("rtn", "gptq", "gptaq", "tesseraq")
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass
class QuantConfig:
    """What `quantize_model` does. `skip` names modules left in float (e.g. ("readout",))."""

    method: str = "gptq"
    spec: QuantSpec = field(default_factory=QuantSpec)
    damp: float = 0.01
    act_order: bool = False
    static_groups: bool = False
    block_size: int = 128
    alpha: float = 0.25
    tesseraq: TesseraQConfig = field(default_factory=TesseraQConfig)
    skip: tuple[str, ...] = ()
    #: TesseraQ only: modules whose layers are reconstructed jointly on the module's output (the paper's
    #: block reconstruction, e.g. ("net",) for a whole MLP); other layers go one by one. "auto" (default)
    #: picks them with `auto_blocks`; () is layer by layer. Ignored by the other methods when "auto".
    blocks: tuple[str, ...] | str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise QuantError(f"quantization method {self.method!r}: use one of {', '.join(METHODS)}")
        if isinstance(self.blocks, str) and self.blocks != "auto":
            raise QuantError(f"blocks={self.blocks!r}: use 'auto' or a tuple of module names")
        if self.blocks and self.blocks != "auto" and self.method != "tesseraq":
            raise QuantError(f"blocks={list(self.blocks)} applies to TesseraQ only, not {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tesseraq"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d["tesseraq"].items()}
        d["skip"] = list(self.skip)
        d["blocks"] = self.blocks if isinstance(self.blocks, str) else list(self.blocks)
        return d


@dataclass
class QuantResult:
    """Per-layer integers (by module name) and the config that made them."""

    layers: dict[str, LayerQuant]
    config: QuantConfig

    def to_dict(self) -> dict[str, Any]:
        """For `models.io.save_model(..., quant=...)`: tensors, numbers and strings only."""
        return {"config": self.config.to_dict(), "layers": {k: v.to_dict() for k, v in self.layers.items()}}


def quantizable_layers(model: nn.Module, skip: Iterable[str] = ()) -> dict[str, nn.Module]:
    """Linear / Conv1d / Conv2d modules by name (registration order), minus `skip`."""
    skip = set(skip)
    return {n: m for n, m in model.named_modules() if isinstance(m, _LAYERS) and n not in skip}


def layer_inputs(module: nn.Module, x: Tensor) -> Tensor:
    """The rows [n, d] that multiply the flattened weight [out, d]: Linear inputs, or unfolded conv patches."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, module.in_features)
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        if module.groups != 1 or isinstance(module.padding, str) or module.padding_mode != "zeros":
            raise QuantError(f"{module}: only groups=1 convs with integer zero padding can be calibrated")
        return ConvGeometry.of_conv(module).unfold(x)  # [B·L, C·k]
    raise QuantError(f"cannot quantize {type(module).__name__}")


def _flat_weight(m: nn.Module) -> Tensor:
    w = getattr(m, "weight", None)
    if not isinstance(w, Tensor):
        raise QuantError(f"cannot quantize {type(m).__name__}: it has no weight tensor")
    return w.detach().reshape(w.shape[0], -1)


@torch.no_grad()
def apply_quant(model: nn.Module, layers: dict[str, LayerQuant]) -> None:
    """Write the dequantized weights into `model` (fake quantization)."""
    mods = dict(model.named_modules())
    for name, lq in layers.items():
        w = mods[name].weight
        w.copy_(lq.dequant().reshape(w.shape).to(w.dtype))


class _Capture:
    """Forward pre-hook collecting one layer's input rows per call."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.rows: list[Tensor] = []
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, mod: nn.Module, args: tuple[Any, ...]) -> None:
        self.rows.append(layer_inputs(mod, args[0].detach()).double())

    def take(self) -> list[Tensor]:
        out, self.rows = self.rows, []
        return out


def _execution_order(
    model: nn.Module, mods: dict[str, nn.Module], batch: Any, run: Callable[[Any], Any]
) -> list[str]:
    order: list[str] = []
    hooks = [
        m.register_forward_pre_hook(lambda *_a, n=n: order.append(n) if n not in order else None)
        for n, m in mods.items()
    ]
    try:
        run(batch)
    finally:
        for h in hooks:
            h.remove()
    return order


@torch.no_grad()
def quantize_model(
    model: nn.Module,
    calib: Tensor | Sequence[Any],
    cfg: QuantConfig | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    progress: bool = False,
) -> QuantResult:
    """Quantize every Linear/Conv weight of `model` in place (fake-quant) and return the integers.

    Layers go one at a time in execution order. For each, the calibration batches run through the model
    whose earlier layers are already quantized (inputs X_q, Hessian H = (2/n)X_qᵀX_q); GPTAQ and TesseraQ
    also run a frozen full-precision copy (inputs X_fp; G = (2/n)ΔXᵀX_q, target X_fp Wᵀ). Hooks fire on
    every call, so a spiking network's T steps all count. `calib` is one batch or a list of batches, each
    passed as `model(batch)` (or `forward(model, batch)`). For SNNs pass already-encoded [T, B, ...] inputs
    so the two models see the same spikes.
    """
    cfg = cfg or QuantConfig()
    batches = [calib] if isinstance(calib, Tensor) else list(calib)
    if not batches and cfg.method != "rtn":
        raise QuantError(f"{cfg.method} needs calibration data; none was given")
    fwd = forward or (lambda m, b: m(b))
    was = model.training
    model.eval()
    mods = quantizable_layers(model, cfg.skip)
    if not mods:
        raise QuantError("the model has no Linear/Conv1d/Conv2d layers to quantize")
    order = _execution_order(model, mods, batches[0], lambda b: fwd(model, b)) if batches else list(mods)
    order += [n for n in mods if n not in order]  # layers never called still get RTN-style treatment below
    fp = copy.deepcopy(model).eval() if cfg.method in ("gptaq", "tesseraq") else None
    fp_mods = dict(fp.named_modules()) if fp is not None else {}
    auto = cfg.blocks == "auto"
    blocks = auto_blocks(model, mods) if auto and cfg.method == "tesseraq" else ()
    block_of = _block_members(model, blocks if auto else tuple(cfg.blocks), mods)
    result: dict[str, LayerQuant] = {}
    from tqdm.auto import tqdm

    for name in tqdm(order, desc=f"quantize {cfg.method} W{cfg.spec.bits}", disable=not progress):
        if name in result:
            continue  # done with its block
        if name in block_of and fp is not None:
            members = [n for n in order if block_of.get(n) == block_of[name]]
            try:
                found = _reconstructed_block(cfg, block_of[name], members, batches, model, fp, fwd)
            except _StatefulBlock:
                if not auto:
                    raise
                for n in members:  # an automatic pick that keeps state (spiking layers): layer by layer
                    block_of.pop(n)
                w = _flat_weight(mods[name]).double()
                found = {
                    name: _calibrated_layer(
                        cfg, name, mods[name], fp_mods.get(name), w, batches, model, fp, fwd
                    )
                }
        elif cfg.method == "rtn":
            found = {name: rtn_layer(_flat_weight(mods[name]).double(), cfg.spec)}
        else:
            w = _flat_weight(mods[name]).double()
            found = {
                name: _calibrated_layer(cfg, name, mods[name], fp_mods.get(name), w, batches, model, fp, fwd)
            }
        result.update(found)
        apply_quant(model, found)
    model.train(was)
    return QuantResult(result, cfg)


def auto_blocks(model: nn.Module, mods: dict[str, nn.Module]) -> tuple[str, ...]:
    """The model's blocks for TesseraQ: each element of a ModuleList (a transformer's layers), then each
    top-level module holding two or more of the remaining layers (e.g. an MLP's `net` Sequential)."""
    found: list[str] = []

    def inside(b: str) -> list[str]:
        return [n for n in mods if n == b or n.startswith(b + ".")]

    for name, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and not any(name.startswith(b + ".") for b in found):
            found += [f"{name}.{k}" for k, _ in m.named_children() if inside(f"{name}.{k}")]
    taken = {n for b in found for n in inside(b)}
    for name, _ in model.named_children():
        rest = [n for n in inside(name) if n not in taken]
        if len(rest) >= 2 and len(rest) == len(inside(name)):
            found.append(name)
    return tuple(found)


class _StatefulBlock(QuantError):
    """The block's output changes when it is called again on the same input."""


def _block_members(model: nn.Module, blocks: Sequence[str], mods: dict[str, nn.Module]) -> dict[str, str]:
    """{layer name: its block} for the configured blocks, checked: they exist, hold layers, do not overlap."""
    names = dict(model.named_modules())
    block_of: dict[str, str] = {}
    for b in blocks:
        if not b or b not in names:
            top = [n for n, _ in model.named_children()]
            raise QuantError(f"block {b!r} is not a submodule of the model; its top-level modules are {top}")
        inside = [n for n in mods if n == b or n.startswith(b + ".")]
        if not inside:
            raise QuantError(f"block {b!r} has no Linear/Conv layer left to quantize")
        for n in inside:
            if n in block_of:
                raise QuantError(
                    f"blocks {block_of[n]!r} and {b!r} overlap (both hold {n!r}); name disjoint modules"
                )
            block_of[n] = b
    return block_of


class _BlockCalls:
    """Forward hook keeping a block's positional inputs and its output, call by call."""

    def __init__(self, name: str, module: nn.Module) -> None:
        self.name = name
        self.inputs: list[tuple[Any, ...]] = []
        self.outputs: list[Tensor] = []
        self.handle = module.register_forward_hook(self, with_kwargs=True)

    def __call__(self, mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if kwargs or not isinstance(out, Tensor):
            got = f"keyword arguments {sorted(kwargs)}" if kwargs else f"it returns a {type(out).__name__}"
            raise QuantError(
                f"block {self.name!r}: block reconstruction needs a module called with positional arguments "
                f"that returns one tensor ({got}); quantize its layers one by one (leave it out of blocks)"
            )
        self.inputs.append(tuple(a.detach() if isinstance(a, Tensor) else a for a in args))
        self.outputs.append(out.detach())


def _reconstructed_block(
    cfg: QuantConfig,
    block: str,
    members: list[str],
    batches: list[Any],
    model: nn.Module,
    fp: nn.Module,
    fwd: Callable[[nn.Module, Any], Any],
) -> dict[str, LayerQuant]:
    """TesseraQ on one block: inputs from the partly quantized model, targets from the float model."""
    q_block, fp_block = model.get_submodule(block), fp.get_submodule(block)
    cap_q, cap_fp = _BlockCalls(block, q_block), _BlockCalls(block, fp_block)
    want_grams = cfg.tesseraq.init == "awq-clip"
    cap_rows = {n: _Capture(model.get_submodule(n)) for n in members} if want_grams else {}
    try:
        for b in batches:
            fwd(model, b)
            fwd(fp, b)
    finally:
        cap_q.handle.remove()
        cap_fp.handle.remove()
        for c in cap_rows.values():
            c.handle.remove()
    if len(cap_q.inputs) != len(cap_fp.inputs) or not cap_q.inputs:
        raise QuantError(
            f"block {block!r} was called {len(cap_q.inputs)} times in the quantized model and "
            f"{len(cap_fp.inputs)} in the float one; it must be called the same number of times (≥ 1)"
        )
    a = cfg.tesseraq.target_alpha
    targets = []
    for args_fp, y_fp, args_q in zip(cap_fp.inputs, cap_fp.outputs, cap_q.inputs, strict=True):
        again = fp_block(*args_fp)
        if not torch.allclose(again, y_fp, rtol=1e-5, atol=1e-6):
            raise _StatefulBlock(
                f"block {block!r} gives a different output for the same input when called again: it keeps "
                "state between calls (e.g. spiking neurons); quantize its layers one by one (leave it out of blocks)"
            )
        targets.append(y_fp if a == 1 else a * y_fp + (1 - a) * fp_block(*args_q))
    rel = {n: "weight" if n == block else n[len(block) + 1 :] + ".weight" for n in members}
    weights = {rel[n]: _flat_weight(model.get_submodule(n)) for n in members}
    grams = {}
    for n, c in cap_rows.items():
        rows = c.take()
        if rows:
            x = torch.cat(rows)
            grams[rel[n]] = x.T @ x / max(len(x), 1)
    found = tesseraq_block(q_block, weights, cap_q.inputs, targets, cfg.spec, cfg.tesseraq, grams)
    return {n: found[rel[n]] for n in members}


def _calibrated_layer(
    cfg: QuantConfig,
    name: str,
    mod: nn.Module,
    fp_mod: nn.Module | None,
    w: Tensor,
    batches: list[Any],
    model: nn.Module,
    fp: nn.Module | None,
    fwd: Callable[[nn.Module, Any], Any],
) -> LayerQuant:
    d = w.shape[1]
    h = torch.zeros(d, d, dtype=torch.float64)
    g = torch.zeros(d, d, dtype=torch.float64) if cfg.method == "gptaq" else None
    c = torch.zeros(d, d, dtype=torch.float64) if cfg.method == "tesseraq" else None  # X_qᵀ X_fp
    n = 0
    cap = _Capture(mod)
    cap_fp = _Capture(fp_mod) if fp_mod is not None else None
    try:
        for b in batches:
            fwd(model, b)
            xq = torch.cat(cap.take()) if cap.rows else torch.zeros(0, d, dtype=torch.float64)
            if cap_fp is not None and fp is not None:
                fwd(fp, b)
                xf = torch.cat(cap_fp.take())
                if xf.shape != xq.shape:
                    raise QuantError(
                        f"layer {name}: the float and quantized models saw different inputs "
                        f"({tuple(xf.shape)} vs {tuple(xq.shape)}); is the forward deterministic?"
                    )
                if g is not None:
                    g += (xf - xq).T @ xq
                if c is not None:
                    c += xq.T @ xf
            h += xq.T @ xq
            n += xq.shape[0]
    finally:
        cap.handle.remove()
        if cap_fp is not None:
            cap_fp.handle.remove()
    if n == 0:
        return rtn_layer(w, cfg.spec)  # never called on the calibration data: nothing to fit
    h *= 2.0 / n
    kw: dict[str, Any] = {
        "damp": cfg.damp,
        "act_order": cfg.act_order,
        "block_size": cfg.block_size,
        "static_groups": cfg.static_groups,
    }
    if cfg.method == "gptq":
        return gptq(w, h, cfg.spec, **kw)
    if cfg.method == "gptaq":
        assert g is not None
        return gptaq(w, h, g * (2.0 / n), cfg.spec, alpha=cfg.alpha, **kw)
    assert c is not None and fp_mod is not None
    w_fp = _flat_weight(fp_mod).double()
    # A = X_qᵀX_q/n = H/2; B = X_qᵀ Y/n with Y = W_fp((1 − a)X_q + a·X_fp): a = 1 is the float layer on float
    # inputs (the paper's target); smaller a shrinks a noisy ΔX (spike flips) as GPTAQ's α does.
    a = cfg.tesseraq.target_alpha
    return tesseraq_gram(w, h / 2, ((1 - a) * h / 2 + a * c / n) @ w_fp.T, cfg.spec, cfg.tesseraq)
