"""A plain ReLU MLP: the float reference for quantization tests, benchmarks and ONNX int8 runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """y = W_L·relu(… relu(W_1·x + b_1) …) + b_L. x [B, sizes[0]] → y [B, sizes[-1]].

    Example: ``MLP([32, 256, 256, 10])(torch.randn(8, 32)).shape == (8, 10)``.
    """

    arch_name = "mlp"

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP sizes {sizes}: give at least [n_in, n_out]")
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            mods.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        self.net = nn.Sequential(*mods)
        self.sizes = sizes

    @property
    def arch(self) -> dict[str, Any]:
        return {"name": self.arch_name, "sizes": self.sizes}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))  # type: ignore[no-any-return]
