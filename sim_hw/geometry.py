"""Convolution geometry: how a Conv1d/Conv2d input is cut into crossbar rows and how rows are put back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from sim_hw.errors import BackendConfigError

__all__ = ["ConvGeometry"]

_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class ConvGeometry:
    """The shape of one Conv1d/Conv2d as a crossbar sees it: a matrix product per output position.

    A conv with weight [C_out, C_in/G, kh, kw] reads, at each of its L = Ho·Wo output positions, a
    patch of kh·kw input pixels of every channel. `unfold` lays those patches out as rows
    x_rows [B·L, C_in·kh·kw] (torch's `F.unfold` order: channel-major, then kernel row, column; rows
    sample-major, then output position), so that for G = 1

        y_rows[B·L, C_out] = x_rows · Wᵀ,   W = weight.reshape(C_out, K),   K = C_in·kh·kw

    and `output_from_rows` lays y_rows out as [B, C_out, (Ho,) Wo]. With G groups, columns
    [g·K, (g+1)·K) of a row (K = C_in/G·kh·kw) feed output channels [g·C_out/G, (g+1)·C_out/G)
    (`split_groups`). `fold` is the adjoint of `unfold` (overlapping patches summed): the gradient
    on the input for a gradient on the rows, which is what a transposed crossbar read returns.

    A 1-D conv is a 2-D conv of height 1: kernel (1, k), stride (1, s), padding (0, p), dilation
    (1, d); its tensors are [B, C, W] outside. Padding is per side: `padding` is (top, left) and
    `padding_end` (bottom, right), None when symmetric (torch's padding="same" with an even
    kernel pads one more at the end). All sizes are in pixels.

    Example:
        >>> g = ConvGeometry.of(torch.nn.Conv1d(3, 8, 5, padding=2))
        >>> rows = g.unfold(torch.randn(2, 3, 16))     # [B·L, C_in·k] = [32, 15]
        >>> g.output_from_rows(rows @ torch.randn(8, 15).t(), (16,)).shape
        torch.Size([2, 8, 16])
    """

    dims: Literal[1, 2]
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    padding_end: tuple[int, int] | None = None
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        if self.dims not in (1, 2):
            raise BackendConfigError(f"ConvGeometry dims={self.dims}: use 1 or 2")
        if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise BackendConfigError(
                f"ConvGeometry groups={self.groups}: must divide in_channels={self.in_channels} "
                f"and out_channels={self.out_channels}"
            )
        if min(*self.kernel, *self.stride, *self.dilation) < 1 or min(*self.padding, *self.end) < 0:
            raise BackendConfigError(
                f"ConvGeometry kernel={self.kernel}, stride={self.stride}, dilation={self.dilation} "
                f"must be >= 1 and padding={self.padding}/{self.padding_end} >= 0"
            )
        flat = (self.kernel[0], self.stride[0], self.dilation[0], self.padding[0], self.end[0])
        if self.dims == 1 and flat != (1, 1, 1, 0, 0):
            raise BackendConfigError(
                "a 1-D ConvGeometry has height 1: kernel (1, k), stride (1, s), dilation (1, d), "
                f"padding (0, p); got kernel={self.kernel}, stride={self.stride}, "
                f"dilation={self.dilation}, padding={self.padding}/{self.padding_end}"
            )
        if self.padding_mode not in _PAD_MODES:
            raise BackendConfigError(
                f"ConvGeometry padding_mode={self.padding_mode!r}: use one of {_PAD_MODES}"
            )

    @classmethod
    def of(cls, module: nn.Module) -> ConvGeometry | None:
        """The geometry of an nn.Conv1d/nn.Conv2d (see `of_conv`); None for an nn.Linear."""
        if isinstance(module, nn.Linear):
            return None
        if not isinstance(module, (nn.Conv1d, nn.Conv2d)):
            raise BackendConfigError(
                f"{type(module).__name__} has no conv geometry (Linear, Conv1d, Conv2d only)"
            )
        return cls.of_conv(module)

    @classmethod
    def of_conv(cls, module: nn.Conv1d | nn.Conv2d) -> ConvGeometry:
        """The geometry of a conv with any padding (ints, "valid", "same"), groups and padding mode."""
        two = isinstance(module, nn.Conv2d)

        def pair(v: tuple[int, ...], one: int) -> tuple[int, int]:
            return (int(v[0]), int(v[1])) if two else (one, int(v[0]))

        kernel, dilation = pair(module.kernel_size, 1), pair(module.dilation, 1)
        padding = module.padding
        if padding == "same":  # as torch resolves it: an odd total puts the extra pixel at the end
            total = [dilation[i] * (kernel[i] - 1) for i in (0, 1)]
            start = (total[0] // 2, total[1] // 2)
            end = (total[0] - start[0], total[1] - start[1])
        else:
            start = (0, 0) if isinstance(padding, str) else pair(padding, 0)  # str: "valid"
            end = start
        return cls(
            dims=2 if two else 1,
            in_channels=int(module.in_channels),
            out_channels=int(module.out_channels),
            kernel=kernel,
            stride=pair(module.stride, 1),
            padding=start,
            dilation=dilation,
            groups=int(module.groups),
            padding_end=None if end == start else end,
            padding_mode=str(module.padding_mode),
        )

    # ----- sizes -----------------------------------------------------------------------------------
    @property
    def end(self) -> tuple[int, int]:
        """Padding after the input (bottom, right) in pixels."""
        return self.padding if self.padding_end is None else self.padding_end

    @property
    def in_features(self) -> int:
        """K: inputs per output channel, C_in/G·kh·kw (the length of one weight-matrix row)."""
        return self.in_channels // self.groups * self.kernel[0] * self.kernel[1]

    @property
    def patch_features(self) -> int:
        """C_in·kh·kw: the width of an unfolded row (every group's patch side by side)."""
        return self.in_channels * self.kernel[0] * self.kernel[1]

    def out_size(self, in_size: tuple[int, ...]) -> tuple[int, ...]:
        """Output spatial size (Ho, Wo) for input (H, W); (Wo,) for (W,) in 1-D."""
        h, w = self._hw(in_size)
        ends = self.end
        ho, wo = (
            (n + self.padding[i] + ends[i] - self.dilation[i] * (self.kernel[i] - 1) - 1) // self.stride[i]
            + 1
            for i, n in enumerate((h, w))
        )
        return (ho, wo) if self.dims == 2 else (wo,)

    def _hw(self, size: tuple[int, ...]) -> tuple[int, int]:
        if len(size) != self.dims:
            raise BackendConfigError(
                f"a {self.dims}-D conv needs a spatial size of {self.dims} values, got {size}"
            )
        return (int(size[0]), int(size[1])) if self.dims == 2 else (1, int(size[0]))

    @property
    def _symmetric_zeros(self) -> bool:
        return self.padding_mode == "zeros" and self.padding_end in (None, self.padding)

    # ----- layout ----------------------------------------------------------------------------------
    def unfold(self, x: Tensor) -> Tensor:
        """x [B, C_in, (H,) W] → rows [B·L, C_in·kh·kw], one per output position (see the class)."""
        x4 = x if self.dims == 2 else x.unsqueeze(-2)
        if self._symmetric_zeros:
            cols = F.unfold(x4, self.kernel, dilation=self.dilation, padding=self.padding, stride=self.stride)
        else:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            (top, left), (bottom, right) = self.padding, self.end
            x4 = F.pad(x4, (left, right, top, bottom), mode=mode)
            cols = F.unfold(x4, self.kernel, dilation=self.dilation, stride=self.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    def fold(self, rows: Tensor, in_size: tuple[int, ...]) -> Tensor:
        """The adjoint of `unfold`: rows [B·L, C_in·kh·kw] → [B, C_in, (H,) W], overlaps summed.

        Zero padding only: the adjoint of reflect/replicate/circular padding is not implemented.
        """
        if self.padding_mode != "zeros":
            raise BackendConfigError(
                f"ConvGeometry.fold: padding_mode {self.padding_mode!r} has no fold here; zero padding only"
            )
        h, w = self._hw(in_size)
        positions = _prod(self.out_size(in_size))
        cols = rows.reshape(-1, positions, rows.shape[-1]).transpose(1, 2)
        if self._symmetric_zeros:
            out = F.fold(
                cols, (h, w), self.kernel, dilation=self.dilation, padding=self.padding, stride=self.stride
            )
        else:
            (top, left), (bottom, right) = self.padding, self.end
            padded = F.fold(
                cols,
                (h + top + bottom, w + left + right),
                self.kernel,
                dilation=self.dilation,
                stride=self.stride,
            )
            out = padded[:, :, top : top + h, left : left + w]
        return out if self.dims == 2 else out.squeeze(-2)

    def output_rows(self, y: Tensor) -> Tensor:
        """An output-shaped tensor [B, C_out, (Ho,) Wo] → rows [B·L, C_out] in `unfold`'s row order."""
        c = self.out_channels
        return y.reshape(y.shape[0], c, -1).transpose(1, 2).reshape(-1, c)

    def output_from_rows(self, rows: Tensor, in_size: tuple[int, ...]) -> Tensor:
        """Rows [B·L, C_out] → [B, C_out, (Ho,) Wo] for an input of spatial size `in_size`."""
        size = self.out_size(in_size)
        c, positions = rows.shape[-1], _prod(size)
        y = rows.reshape(-1, positions, c).transpose(1, 2)
        return y.reshape(y.shape[0], c, *size)

    def split_groups(self, rows: Tensor) -> Tensor:
        """Rows [N, G·F] → [G, N, F]: each group's slice of unfolded inputs (or of output rows)."""
        g = self.groups
        return rows.reshape(rows.shape[0], g, rows.shape[1] // g).transpose(0, 1)


def _prod(size: tuple[int, ...]) -> int:
    out = 1
    for n in size:
        out *= int(n)
    return out
