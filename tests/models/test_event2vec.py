"""event2vec: embedding, attention, order (in)sensitivity, time reaching the logits, learning; voxel CNN."""

from __future__ import annotations

import pytest
import torch

from models.event2vec import TIME_MODES, AxisEmbedding, Event2Vec, EventEmbedding, LinearAttention, VoxelCNN
from models.train import TrainConfig, evaluate, fit


def _tokens(b: int, n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, size, (b, n, 2), generator=g).float()
    t = torch.sort(torch.rand(b, n, 1, generator=g), dim=1).values
    p = torch.randint(0, 2, (b, n, 1), generator=g).float()
    return torch.cat([xy, t, p], -1)


def test_axis_embedding_smooths_neighbours() -> None:
    emb = AxisEmbedding(10, 4, neighbours=2)
    with torch.no_grad():
        emb.table.zero_()
        emb.table[1, 5] = 1.0
    out = emb(torch.ones(1, 10, dtype=torch.long), torch.arange(10).view(1, 10))[0, :, 0]
    expect = torch.exp(-torch.tensor([9.0, 4, 1, 0, 1, 4, 9]) / 2)
    assert torch.allclose(out[3:8], expect[1:6]) and out[0] == 0 and out[9] == 0
    # the other polarity's table is untouched
    assert emb(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[4, 5, 6]])).abs().sum() == 0


def test_embedding_split_and_time_modes() -> None:
    e = EventEmbedding(width=48, height=16, dim=32)
    assert e.ex.table.shape[-1] == 24 and e.ey.table.shape[-1] == 8  # split by W:H
    tok = _tokens(2, 5, 16)
    assert e(tok).shape == (2, 5, 32)
    assert EventEmbedding(16, 16, 32, time_mode="fourier")(tok).shape == (2, 5, 32)
    with pytest.raises(ValueError, match="time_mode"):
        EventEmbedding(16, 16, time_mode="rope")


def test_linear_attention_is_permutation_equivariant() -> None:
    torch.manual_seed(0)
    att = LinearAttention(16, heads=2)
    x = torch.randn(2, 9, 16)
    perm = torch.randperm(9)
    assert torch.allclose(att(x)[:, perm], att(x[:, perm]), atol=1e-5)


def test_order_matters_only_with_sequence_conv() -> None:
    torch.manual_seed(0)
    tok = _tokens(2, 32)
    perm = torch.randperm(32)
    set_model = Event2Vec(32, 32, 4, dim=16, ffn=32).eval()
    seq_model = Event2Vec(32, 32, 4, dim=16, ffn=32, seq_conv=5).eval()
    assert torch.allclose(set_model(tok), set_model(tok[:, perm]), atol=1e-5)
    assert not torch.allclose(seq_model(tok), seq_model(tok[:, perm]), atol=1e-4)
    with pytest.raises(ValueError, match=r"\[B, N, 4\]"):
        set_model(tok[..., :3])


def test_event2vec_learns_where_events_are() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (120,), generator=g)
    tok = _tokens(120, 16, 32, seed=2)
    tok[..., 0] = torch.where(
        y[:, None] == 1, tok[..., 0] % 16 + 16, tok[..., 0] % 16
    )  # class = left/right half
    model = Event2Vec(32, 32, 2, dim=16, ffn=32, layers=1)
    fit(model, tok[:90], y[:90], TrainConfig(epochs=6, lr=1e-2, batch_size=30, progress=False))
    assert evaluate(model, tok[90:], y[90:]) > 0.9


@pytest.mark.parametrize("seq_conv", [0, 5])
@pytest.mark.parametrize("time_mode", TIME_MODES)
def test_logits_change_when_timestamps_change(time_mode: str, seq_conv: int) -> None:
    """Pre-norm LayerNorms remove a shift shared by all channels; time must still reach the logits."""
    torch.manual_seed(3)
    tok = _tokens(4, 48)
    later = tok.clone()
    later[..., 2] = torch.sort(torch.rand(4, 48, generator=torch.Generator().manual_seed(4)), dim=1).values
    model = Event2Vec(32, 32, 4, dim=16, ffn=32, time_mode=time_mode, seq_conv=seq_conv).eval()
    with torch.no_grad():
        moved = float((model(tok) - model(later)).abs().max())
    assert moved > 1e-3, f"time_mode {time_mode!r}: logits moved by only {moved:.2e}"


def test_add_mode_files_from_before_time_add_load_as_before() -> None:
    """Such files added t to every channel (v = 1), which the pre-norm encoder cannot see."""
    torch.manual_seed(0)
    old = {k: v for k, v in Event2Vec(32, 32, 4, dim=16, ffn=32).state_dict().items() if "time_add" not in k}
    model = Event2Vec(32, 32, 4, dim=16, ffn=32).eval()
    model.load_state_dict(old)
    assert model.embed.time_add is not None and torch.equal(model.embed.time_add.weight, torch.ones(16, 1))
    tok = _tokens(2, 32)
    shifted = tok.clone()
    shifted[..., 2] = 1 - shifted[..., 2]
    with torch.no_grad():
        assert torch.allclose(model(tok), model(shifted), atol=1e-5)


@pytest.mark.parametrize("time_mode", TIME_MODES)
def test_a_set_encoder_learns_motion_direction_from_time(time_mode: str) -> None:
    """Left-to-right vs right-to-left sweeps over the same pixels differ only in when each pixel fires."""
    g = torch.Generator().manual_seed(5)
    n, k = 160, 24
    y = torch.randint(0, 2, (n,), generator=g)
    t = torch.sort(torch.rand(n, k, generator=g), dim=1).values
    x = torch.where(y[:, None] == 1, t, 1 - t) * 28 + 2 + torch.randint(-1, 2, (n, k), generator=g)
    tok = torch.stack([x, torch.randint(0, 32, (n, k), generator=g).float(), t, torch.zeros(n, k)], -1)
    torch.manual_seed(0)
    model = Event2Vec(32, 32, 2, dim=16, ffn=32, layers=1, time_mode=time_mode)
    fit(model, tok[:120], y[:120], TrainConfig(epochs=15, lr=1e-2, batch_size=30, progress=False))
    assert evaluate(model, tok[120:], y[120:]) > 0.9


def test_voxel_cnn() -> None:
    net = VoxelCNN(5, 8, channels=(4, 8))
    assert net(torch.zeros(3, 5, 32, 40)).shape == (3, 8)
    assert net.arch == {"name": "voxel_cnn", "in_channels": 5, "n_classes": 8, "channels": [4, 8]}


pytestmark = pytest.mark.usefixtures("torch_one_thread")
