"""Write our quantized integers into ONNX Runtime's 4-bit (also 2/8-bit) `com.microsoft.MatMulNBits` op."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .gptq import LayerQuant
from .quantizer import QuantError

__all__ = ["pack_nbits", "pack_zero_points", "nbits_block_size", "matmul_nbits", "gemm_to_nbits"]


def nbits_block_size(k: int, group_size: int | None) -> int:
    """MatMulNBits' block_size: the group size (a power of two >= 16), or for per-channel integers the
    next power of two >= K (the padding of the last block is never read)."""
    if group_size is None:
        return max(16, 1 << (k - 1).bit_length())
    if group_size < 16 or group_size & (group_size - 1):
        raise QuantError(f"MatMulNBits needs a power-of-two group size >= 16; got {group_size}")
    return group_size


def _pack_rows(v: np.ndarray, bits: int) -> np.ndarray:
    """Pack codes [R, M] (M a multiple of 8/bits) low-first: element j of a byte sits at bits j·b."""
    per = 8 // bits
    v = v.astype(np.uint8).reshape(v.shape[0], -1, per)
    out = np.zeros(v.shape[:2], np.uint8)
    for j in range(per):
        out |= (v[:, :, j] << (bits * j)).astype(np.uint8)
    return out


def pack_nbits(q: np.ndarray, bits: int, block_size: int) -> np.ndarray:
    """Integers q [N, K] → B [N, k_blocks, block_size·bits/8] uint8, codes packed low-first along K."""
    if bits not in (2, 4, 8):
        raise QuantError(f"MatMulNBits packs 2, 4 or 8 bits; got {bits}")
    n, k = q.shape
    kb = -(-k // block_size)
    padded = np.zeros((n, kb * block_size), np.uint8)
    padded[:, :k] = q
    return _pack_rows(padded, bits).reshape(n, kb, block_size * bits // 8)


def pack_zero_points(z: np.ndarray, bits: int) -> np.ndarray:
    """Zero points [N, k_blocks] → [N, ceil(k_blocks·bits/8)] uint8, packed low-first per row."""
    per = 8 // bits
    n, kb = z.shape
    padded = np.zeros((n, -(-kb // per) * per), np.uint8)
    padded[:, :kb] = z
    return _pack_rows(padded, bits)


def matmul_nbits(
    lq: LayerQuant, input_name: str, output_name: str, prefix: str, accuracy_level: int = 0
) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    """A MatMulNBits node computing input @ dequant(W)ᵀ for W [N, K] (a Linear weight) and its initializers."""
    if not lq.contiguous_groups:
        raise QuantError(
            "MatMulNBits needs contiguous groups: quantize with act_order=False or static_groups=True"
        )
    n, k = lq.qweight.shape
    block = nbits_block_size(k, lq.group_size)
    kb = -(-k // block)
    if lq.scale.shape[1] != kb:
        raise QuantError(f"{prefix}: {lq.scale.shape[1]} groups do not match {kb} MatMulNBits blocks")
    q = lq.qweight.round().clamp(0, 2**lq.bits - 1).numpy().astype(np.uint8)
    inits = [
        numpy_helper.from_array(pack_nbits(q, lq.bits, block), f"{prefix}_Q{lq.bits}"),
        numpy_helper.from_array(lq.scale.float().numpy().reshape(-1).astype(np.float32), f"{prefix}_scales"),
        numpy_helper.from_array(
            pack_zero_points(lq.zero.round().numpy().astype(np.uint8), lq.bits).reshape(-1), f"{prefix}_zp"
        ),
    ]
    node = helper.make_node(
        "MatMulNBits",
        [input_name, *(t.name for t in inits)],
        [output_name],
        name=f"{prefix}_MatMulNBits",
        domain="com.microsoft",
        K=k,
        N=n,
        bits=lq.bits,
        block_size=block,
        accuracy_level=accuracy_level,
    )
    return node, inits


def gemm_to_nbits(
    onnx_in: str | Path | onnx.ModelProto,
    layers: dict[str, LayerQuant],
    onnx_out: str | Path,
    accuracy_level: int = 0,
) -> list[str]:
    """Replace each `Gemm(x, W, b, transB=1)` whose weight initializer is named `<layer>.weight` (or
    `<wrapper>.<layer>.weight`, as in one-step SNN exports) for a layer in `layers` by MatMulNBits(x) + b.
    Returns the replaced layer names; other nodes are untouched."""
    model = onnx_in if isinstance(onnx_in, onnx.ModelProto) else onnx.load(str(onnx_in))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes: list[onnx.NodeProto] = []
    done: list[str] = []
    for node in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        wname = node.input[1] if len(node.input) > 1 else ""
        stem = wname[: -len(".weight")] if wname.endswith(".weight") else ""
        layer = next((n for n in layers if stem == n or stem.endswith("." + n)), None)
        if (
            node.op_type != "Gemm"
            or layer not in layers
            or attrs.get("transB", 0) != 1
            or attrs.get("transA", 0) != 0
            or attrs.get("alpha", 1.0) != 1.0
        ):
            new_nodes.append(node)
            continue
        lq = layers[layer]
        prefix = layer.replace(".", "_")
        mm_out = f"{prefix}_nbits_out" if len(node.input) > 2 else node.output[0]
        mm, new_inits = matmul_nbits(lq, node.input[0], mm_out, prefix, accuracy_level)
        new_nodes.append(mm)
        g.initializer.extend(new_inits)
        if len(node.input) > 2:
            new_nodes.append(
                helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=f"{prefix}_bias")
            )
        done.append(layer)
        g.initializer.remove(inits[wname])
    g.ClearField("node")
    g.node.extend(new_nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(onnx_out))
    return done
