"""v1-style event2vec rows on CPU (issue 15): time added through a learned vector vs the old frozen v = 1.

Usage: python -m bench.studies.event2vec_v1 PER_CLASS TEST_PER_CLASS EPOCHS [v1frozen] [add] [fourier] [seqconv]
e.g. `196 56 30 v1frozen add fourier seqconv` (the RESULTS figures).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from models.event2vec import Event2Vec
from models.train import TrainConfig, fit, predict_logits
from nodes.commands.train_e2v import gesture_data, tokens

DIM = 32
ROWS = {  # argument -> (label, time_mode, seq_conv, frozen v = 1)
    "v1frozen": ("add, v = 1 frozen (pre-#15 'add'), no seq-conv", "add", 0, True),
    "add": ("add (learned vector), no seq-conv", "add", 0, False),
    "fourier": ("fourier, no seq-conv", "fourier", 0, False),
    "seqconv": ("fourier, seq-conv 9 (default)", "fourier", 9, False),
}


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    per_class, test_per_class, epochs = int(argv[0]), int(argv[1]), int(argv[2])
    data = gesture_data(per_class, test_per_class, 64, 64, seed=0)
    for arg in argv[3:]:
        label, time_mode, seq_conv, frozen = ROWS[arg]
        seed, n_events, views = 0, 256, 4  # events per sample, test-time views
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        m = Event2Vec(
            64,
            64,
            len(data.names),
            dim=DIM,
            layers=2,
            heads=2,
            ffn=2 * DIM,
            time_mode=time_mode,
            seq_conv=seq_conv,
        )
        if frozen:
            with torch.no_grad():
                m.embed.time_add.weight.fill_(1.0)
            m.embed.time_add.weight.requires_grad_(False)
        t0 = time.perf_counter()
        cfg = TrainConfig(epochs=epochs, lr=3e-3, batch_size=32, seed=seed, progress=False)
        fit(
            m,
            torch.arange(len(data.train)),
            data.y_train,
            cfg,
            encode=lambda idx, rng=rng: tokens([data.train[i] for i in idx.tolist()], 256, rng),
        )
        vr = np.random.default_rng(seed + 1)
        logits = sum(predict_logits(m, tokens(data.test, n_events, vr)) for _ in range(views))
        acc = float((logits.argmax(1) == data.y_test).float().mean())
        print(
            f"{label}: held-out {acc:.3f} ({len(data.train)} train / {len(data.test)} test, d{DIM}, "
            f"{epochs} epochs, {time.perf_counter() - t0:.0f}s)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
