"""The dense baseline event2vec is compared with: a voxel grid [bins, H, W] into a small CNN."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["VoxelCNN"]


class VoxelCNN(nn.Module):
    """[conv 3×3 stride 2 → BN → ReLU] × len(channels) → global average pool → linear.

    x [B, bins, H, W] (a voxel grid, or event frames with 2 channels) → logits [B, n_classes].

    Example: ``VoxelCNN(in_channels=5, n_classes=8)(torch.zeros(2, 5, 64, 64)).shape == (2, 8)``.
    """

    arch_name = "voxel_cnn"

    def __init__(
        self, in_channels: int, n_classes: int, channels: tuple[int, ...] | list[int] = (16, 32, 64)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for co in channels:
            layers += [
                nn.Conv2d(c, int(co), 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(int(co)),
                nn.ReLU(),
            ]
            c = int(co)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)
        self._arch: dict[str, Any] = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "channels": [int(x) for x in channels],
        }

    @property
    def arch(self) -> dict[str, Any]:
        return {"name": self.arch_name, **self._arch}

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean((2, 3)))  # type: ignore[no-any-return]
