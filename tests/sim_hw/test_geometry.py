"""ConvGeometry: unfolding into crossbar rows and folding back agree with torch's unfold, conv and autograd."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sim_hw.errors import BackendConfigError
from sim_hw.geometry import ConvGeometry

# (dims, in, out, kernel, stride, padding, dilation, groups)
CASES = [
    (1, 3, 4, 3, 1, 1, 1, 1),
    (1, 4, 6, 5, 2, 3, 2, 2),
    (1, 6, 6, 3, 1, 0, 1, 6),  # depthwise
    (2, 3, 4, 3, 1, 1, 1, 1),
    (2, 4, 6, (3, 2), (2, 1), (1, 2), (1, 2), 2),
    (2, 2, 4, 3, 2, 0, 2, 1),
]
IDS = ["1d", "1d-stride-dil-groups", "1d-depthwise", "2d", "2d-rect-groups", "2d-stride-dil"]


def _conv(case: tuple[Any, ...], seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    dims, cin, cout, k, s, p, d, g = case
    torch.manual_seed(seed)
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    conv = cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
    x = torch.randn(2, cin, *((9, 11) if dims == 2 else (13,)))
    return conv, x


def _grouped_product(geo: ConvGeometry, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The conv as the crossbar computes it: per group, rows [N, K] · W_gᵀ, laid out as the output."""
    w = conv.weight.detach().reshape(geo.groups, geo.out_channels // geo.groups, geo.in_features)
    rows = geo.split_groups(geo.unfold(x))  # [G, N, K]
    y = torch.bmm(rows, w.transpose(1, 2))  # [G, N, M/G]
    y_rows = y.transpose(0, 1).reshape(rows.shape[1], geo.out_channels)
    return geo.output_from_rows(y_rows, tuple(x.shape[2:])) + conv.bias.detach().view(1, -1, *[1] * geo.dims)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unfold_times_weights_is_the_conv(case: tuple[Any, ...]) -> None:
    conv, x = _conv(case)
    geo = ConvGeometry.of(conv)
    assert geo is not None and geo.in_features == conv.weight[0].numel()
    rows = geo.unfold(x)
    positions = 1
    for n in geo.out_size(tuple(x.shape[2:])):
        positions *= n
    assert rows.shape == (x.shape[0] * positions, geo.patch_features)
    x4 = x if geo.dims == 2 else x.unsqueeze(-2)
    cols = F.unfold(x4, geo.kernel, dilation=geo.dilation, padding=geo.padding, stride=geo.stride)
    assert torch.equal(rows, cols.transpose(1, 2).reshape(-1, cols.shape[1]))  # torch's layout, exactly
    y = conv(x).detach()
    assert geo.out_size(tuple(x.shape[2:])) == tuple(y.shape[2:])
    torch.testing.assert_close(_grouped_product(geo, conv, x), y, atol=1e-5, rtol=1e-5)
    assert torch.equal(
        geo.output_rows(geo.output_from_rows(geo.output_rows(y), tuple(x.shape[2:]))), geo.output_rows(y)
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fold_is_the_adjoint_of_unfold(case: tuple[Any, ...]) -> None:
    """⟨unfold(x), r⟩ = ⟨x, fold(r)⟩: fold is the input gradient of the rows (what BP reads transposed)."""
    conv, x = _conv(case)
    geo = ConvGeometry.of(conv)
    assert geo is not None
    xr = x.clone().requires_grad_(True)
    rows = geo.unfold(xr)
    r = torch.randn_like(rows)
    (rows * r).sum().backward()
    torch.testing.assert_close(geo.fold(r, tuple(x.shape[2:])), xr.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's own copy
@pytest.mark.parametrize("dims", [1, 2])
def test_torch_padding_strings_and_modes(dims: int) -> None:
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    size = (8, 7) if dims == 2 else (10,)
    torch.manual_seed(2)
    for kwargs in (
        {"kernel_size": 4, "padding": "same"},  # even kernel: torch pads one more at the end
        {"kernel_size": 3, "padding": "valid"},
        {"kernel_size": 3, "padding": 1, "padding_mode": "reflect"},
        {"kernel_size": 3, "padding": 2, "padding_mode": "circular", "stride": 2},
    ):
        conv = cls(3, 5, **kwargs)
        x = torch.randn(2, 3, *size)
        geo = ConvGeometry.of(conv)
        assert geo is not None
        y_rows = geo.unfold(x) @ conv.weight.detach().reshape(5, -1).t() + conv.bias.detach()
        torch.testing.assert_close(geo.output_from_rows(y_rows, size), conv(x).detach(), atol=1e-5, rtol=1e-5)
        if geo.padding_mode == "zeros":
            xr = x.clone().requires_grad_(True)
            r = torch.randn(y_rows.shape[0], geo.patch_features)
            (geo.unfold(xr) * r).sum().backward()
            torch.testing.assert_close(geo.fold(r, size), xr.grad, atol=1e-5, rtol=1e-5)
        else:
            with pytest.raises(BackendConfigError, match="zero padding only"):
                geo.fold(torch.zeros(1, geo.patch_features), size)
    same = ConvGeometry.of(cls(3, 5, 4, padding="same"))
    assert same is not None and same.padding[-1] == 1 and same.end[-1] == 2


def test_linear_has_no_geometry_and_bad_geometries_are_named() -> None:
    assert ConvGeometry.of(nn.Linear(3, 2)) is None
    with pytest.raises(BackendConfigError, match="ReLU has no conv geometry"):
        ConvGeometry.of(nn.ReLU())
    with pytest.raises(BackendConfigError, match="groups=2: must divide in_channels=3"):
        ConvGeometry(dims=2, in_channels=3, out_channels=4, kernel=(3, 3), groups=2)
    with pytest.raises(BackendConfigError, match="1-D ConvGeometry has height 1"):
        ConvGeometry(dims=1, in_channels=3, out_channels=4, kernel=(3, 3))
    with pytest.raises(BackendConfigError, match="spatial size of 2 values"):
        ConvGeometry(dims=2, in_channels=1, out_channels=1, kernel=(1, 1)).out_size((5,))
    geo = ConvGeometry(dims=1, in_channels=2, out_channels=3, kernel=(1, 3), padding=(0, 1))
    assert geo == ConvGeometry.of(nn.Conv1d(2, 3, 3, padding=1))  # frozen records compare by value
