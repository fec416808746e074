"""Oracle: the GPTQ and GPTAQ reference `fasterquant` loops transcribed line by line, for tests and the bench."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["reference_find_params", "reference_fasterquant"]

# Transcribed from the published algorithms, not from models/quant/gptq.py, and importing nothing from it:
# IST-DASLab/gptq gptq.py `GPTQ.fasterquant` + quant.py `Quantizer` (asymmetric, per channel, mse off), and
# Intelligent-Computing-Lab-Yale/GPTAQ fake_quant/gptaq_utils.py `fasterquant` (the P term) [SCIENCE 4.8.1,
# 4.8.2]. Variable names follow the reference code (W, H, Hinv, W1, Q1, Err1, Hinv1, P1, dXXT).


def reference_find_params(x: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """quant.py `find_params(x, weight=True)` per channel, asymmetric: (scale, zero), each [rows, 1]."""
    maxq = 2**bits - 1
    tmp = torch.zeros(x.shape[0], dtype=x.dtype)
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def _quantize(x: Tensor, scale: Tensor, zero: Tensor, maxq: int) -> tuple[Tensor, Tensor]:
    """quant.py `quantize`; also returns the integers it rounded to."""
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero), q


def reference_fasterquant(
    W: Tensor,  # noqa: N803 - the reference's names
    H: Tensor,  # noqa: N803
    bits: int,
    *,
    blocksize: int = 128,
    percdamp: float = 0.01,
    groupsize: int = -1,
    actorder: bool = False,
    static_groups: bool = False,
    dXXT: Tensor | None = None,  # noqa: N803
    alpha: float = 0.25,
) -> tuple[Tensor, Tensor]:
    """GPTQ `fasterquant`, or GPTAQ's when `dXXT` = (2/n)(X_fp − X_q)X_qᵀ is given.

    W [rows, columns], H [columns, columns]. Returns (Q, integers), both [rows, columns] in the original
    column order (Q is the fake-quantized weight the reference writes back into the layer).
    """
    maxq = 2**bits - 1
    W = W.clone().double()  # noqa: N806
    H = H.clone().double()  # noqa: N806
    columns = W.shape[1]
    scale, zero = reference_find_params(W, bits)  # `if not self.quantizer.ready()`: once, on all of W

    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if dXXT is not None:
        dXXT = dXXT.clone().double()  # noqa: N806
        dXXT[:, dead] = 0

    groups: list[tuple[Tensor, Tensor]] = []
    if static_groups:
        for i in range(0, columns, groupsize):
            groups.append(reference_find_params(W[:, i : (i + groupsize)], bits))

    perm = torch.arange(columns)
    if actorder:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]  # noqa: N806
        H = H[perm][:, perm]  # noqa: N806
        if dXXT is not None:
            dXXT = dXXT[perm][:, perm]  # noqa: N806
        invperm = torch.argsort(perm)

    Q = torch.zeros_like(W)  # noqa: N806
    ints = torch.zeros_like(W)

    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)  # noqa: N806
    H = torch.cholesky_inverse(H)  # noqa: N806
    H = torch.linalg.cholesky(H, upper=True)  # noqa: N806
    Hinv = H  # noqa: N806

    P = None  # noqa: N806
    if dXXT is not None:
        P = alpha * ((dXXT @ Hinv.T).triu(diagonal=1)) @ Hinv  # noqa: N806

    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1

        W1 = W[:, i1:i2].clone()  # noqa: N806
        Q1 = torch.zeros_like(W1)  # noqa: N806
        I1 = torch.zeros_like(W1)  # noqa: N806
        Err1 = torch.zeros_like(W1)  # noqa: N806
        Hinv1 = Hinv[i1:i2, i1:i2]  # noqa: N806
        P1 = P[i1:i2, i1:i2] if P is not None else None  # noqa: N806

        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]

            if groupsize != -1:
                if not static_groups:
                    if (i1 + i) % groupsize == 0:
                        # the OUTER W, as the reference does
                        scale, zero = reference_find_params(W[:, (i1 + i) : (i1 + i + groupsize)], bits)
                else:
                    idx = i1 + i
                    if actorder:
                        idx = int(perm[idx])
                    scale, zero = groups[idx // groupsize]

            q, qi = _quantize(w.unsqueeze(1), scale, zero, maxq)
            q, qi = q.flatten(), qi.flatten()
            Q1[:, i] = q
            I1[:, i] = qi

            err1 = (w - q) / d
            if P1 is None:
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            else:
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0)) - w.unsqueeze(1).matmul(
                    P1[i, i:].unsqueeze(0)
                )
            Err1[:, i] = err1

        Q[:, i1:i2] = Q1
        ints[:, i1:i2] = I1
        if P is None:
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        else:
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:]) - W1.matmul(P[i1:i2, i2:])

    if actorder:
        Q = Q[:, invperm]  # noqa: N806
        ints = ints[:, invperm]
    return Q, ints
