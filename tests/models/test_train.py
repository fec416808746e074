"""models.train.fit: early stopping on validation loss restores the best epoch's weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.train import TrainConfig, fit, predict_logits


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # validation labels disagree with training on a quarter of the samples: the loss falls for a few
    # epochs, then rises as growing weights make the disagreeing samples costlier
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    xv = torch.randn(32, 4, generator=gen)
    yv = (xv[:, 0] > 0).long()
    yv[:8] = 1 - yv[:8]
    return x, y, xv, yv


def test_early_stopping_keeps_the_epoch_with_the_lowest_validation_loss() -> None:
    x, y, xv, yv = _data()
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    cfg = TrainConfig(epochs=40, lr=5e-2, batch_size=16, progress=False, patience=3)
    hist = fit(model, x, y, cfg, x_val=xv, y_val=yv)
    best = min(range(len(hist.val_loss)), key=hist.val_loss.__getitem__) + 1
    assert hist.stopped_early and len(hist.loss) == best + 3 < 40
    assert hist.best_epoch == best > 1
    # the model holds that epoch's weights: its validation loss is the recorded one, not the last epoch's
    vloss = float(F.cross_entropy(predict_logits(model, xv), yv))
    assert abs(vloss - hist.val_loss[best - 1]) < 1e-6
    assert vloss < hist.val_loss[-1]


def test_without_patience_all_epochs_run_and_the_last_weights_stay() -> None:
    x, y, xv, yv = _data()
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    hist = fit(model, x, y, TrainConfig(epochs=8, lr=5e-2, batch_size=16, progress=False), x_val=xv, y_val=yv)
    assert len(hist.loss) == 8 and hist.best_epoch == 8 and not hist.stopped_early
    assert abs(float(F.cross_entropy(predict_logits(model, xv), yv)) - hist.val_loss[-1]) < 1e-6
