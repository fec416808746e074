"""`edgeloop train event2vec`: event2vec on the synthetic event camera's gestures, against a voxel-grid CNN."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from models.event2vec import TIME_MODES, Event2Vec, VoxelCNN
from models.io import save_model
from models.train import TrainConfig, fit, predict_logits
from nodes.sensors.events.representations import event_tokens, voxel_grid
from nodes.sensors.events.synthetic import make_gesture_dataset

__all__ = [
    "GestureData",
    "ModelScore",
    "gesture_data",
    "tokens",
    "voxels",
    "train_event2vec_model",
    "train_voxel_cnn",
    "throughput",
    "add_event2vec_parser",
    "event2vec_handler",
]


@dataclass
class GestureData:
    """Labelled synthetic gestures (event arrays), train and held-out drawn with different seeds."""

    train: list[np.ndarray]
    y_train: Tensor
    test: list[np.ndarray]
    y_test: Tensor
    names: list[str]
    width: int
    height: int


@dataclass
class ModelScore:
    name: str
    accuracy: float
    params: int
    samples_per_s: float  # model only, batch 64, this process's torch threads
    end_to_end_per_s: float  # representation from raw events + model
    train_s: float


def gesture_data(
    per_class: int, test_per_class: int, width: int = 64, height: int = 64, seed: int = 0
) -> GestureData:
    ev, y, names = make_gesture_dataset(per_class, width, height, seed=seed)
    evt, yt, _ = make_gesture_dataset(test_per_class, width, height, seed=seed + 10_000)
    return GestureData(ev, torch.from_numpy(y), evt, torch.from_numpy(yt), names, width, height)


def tokens(events: list[np.ndarray], n: int, rng: np.random.Generator) -> Tensor:
    """[B, n, 4] event2vec tokens: n random events per sample, in time order (SCIENCE 2.5, v1 sampling)."""
    return torch.from_numpy(np.stack([event_tokens(e, n, "sample", rng) for e in events]))


def voxels(events: list[np.ndarray], bins: int, width: int, height: int) -> Tensor:
    return torch.from_numpy(np.stack([voxel_grid(e, bins, width, height) for e in events]))


def throughput(fn: Callable[[], Any], batch: int, repeats: int = 3) -> float:
    """Samples per second of `fn` (one batch per call): best of `repeats` after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return batch / best


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def train_event2vec_model(
    data: GestureData,
    n_events: int = 256,
    epochs: int = 20,
    dim: int = 64,
    layers: int = 2,
    lr: float = 3e-3,
    views: int = 4,
    seed: int = 0,
    progress: bool = True,
    time_mode: str = "fourier",
    seq_conv: int = 9,
    device: str = "cpu",
) -> tuple[Event2Vec, ModelScore]:
    """Fresh random event subsets every epoch; held-out logits averaged over `views` subsets."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Event2Vec(
        data.width,
        data.height,
        len(data.names),
        dim=dim,
        layers=layers,
        heads=2,
        ffn=2 * dim,
        time_mode=time_mode,
        seq_conv=seq_conv,
    ).to(device)
    val_rng = np.random.default_rng(seed + 1)
    x_val = tokens(data.test, n_events, val_rng)
    t0 = time.perf_counter()
    fit(
        model,
        torch.arange(len(data.train)),
        data.y_train,
        TrainConfig(
            epochs=epochs,
            lr=lr,
            batch_size=32,
            seed=seed,
            progress=progress,
            desc="train event2vec",
            device=device,
        ),
        encode=lambda idx: tokens([data.train[i] for i in idx.tolist()], n_events, rng),
        x_val=x_val,
        y_val=data.y_test,
        val_encode=lambda v: v,
    )
    train_s = time.perf_counter() - t0
    logits = predict_logits(model, tokens(data.test, n_events, val_rng))
    for _ in range(views - 1):  # test-time augmentation: the sum over `views` random token draws
        logits = logits + predict_logits(model, tokens(data.test, n_events, val_rng))
    acc = float((logits.argmax(1) == data.y_test).float().mean())
    model.cpu()  # samples/s are always CPU figures (the edge target)
    batch = data.test[:64]
    xb = tokens(batch, n_events, val_rng)
    with torch.no_grad():
        sps = throughput(lambda: model(xb), len(batch))
        e2e = throughput(lambda: model(tokens(batch, n_events, val_rng)), len(batch))
    return model, ModelScore("event2vec", acc, _params(model), sps, e2e, train_s)


def train_voxel_cnn(
    data: GestureData,
    bins: int = 5,
    epochs: int = 20,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> tuple[VoxelCNN, ModelScore]:
    """The dense baseline: a `bins`-bin voxel grid (Zhu et al. 2019) into a 3-layer stride-2 CNN."""
    torch.manual_seed(seed)
    xt = voxels(data.train, bins, data.width, data.height)
    xv = voxels(data.test, bins, data.width, data.height)
    model = VoxelCNN(bins, len(data.names)).to(device)
    t0 = time.perf_counter()
    fit(
        model,
        xt,
        data.y_train,
        TrainConfig(
            epochs=epochs,
            lr=lr,
            batch_size=32,
            seed=seed,
            progress=progress,
            desc="train voxel CNN",
            device=device,
        ),
        x_val=xv,
        y_val=data.y_test,
    )
    train_s = time.perf_counter() - t0
    acc = float((predict_logits(model, xv).argmax(1) == data.y_test).float().mean())
    model.cpu().eval()
    batch = data.test[:64]
    xb = xv[:64]
    with torch.no_grad():
        sps = throughput(lambda: model(xb), len(batch))
        e2e = throughput(lambda: model(voxels(batch, bins, data.width, data.height)), len(batch))
    return model, ModelScore("voxel CNN", acc, _params(model), sps, e2e, train_s)


def add_event2vec_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sp = sub.add_parser(
        "event2vec", help="event2vec on synthetic event-camera gestures (+ voxel CNN baseline)"
    )
    sp.add_argument("--out", "-o", default="event2vec.pt", help="model file to write (default event2vec.pt)")
    sp.add_argument("--per-class", type=int, default=100, help="training gestures per class (default 100)")
    sp.add_argument("--test-per-class", type=int, default=30, help="held-out gestures per class (default 30)")
    sp.add_argument("--size", type=int, default=64, help="sensor width = height in pixels (default 64)")
    sp.add_argument("--events", type=int, default=256, help="events per sample (tokens; default 256)")
    sp.add_argument("--dim", type=int, default=32, help="embedding width (default 32: ~23k parameters)")
    sp.add_argument("--layers", type=int, default=2)
    sp.add_argument(
        "--time-mode",
        choices=TIME_MODES,
        default="fourier",
        help="how t enters the embedding: fourier (default) or add (t times a learned vector, v1-style)",
    )
    sp.add_argument(
        "--seq-conv",
        type=int,
        default=9,
        help="depthwise Conv1d kernel over the time-ordered tokens (default 9; 0 = a pure set encoder)",
    )
    sp.add_argument("--epochs", type=int, default=30)
    sp.add_argument("--device", default="cpu", help="torch device for training, e.g. cuda (default cpu)")
    sp.add_argument("--lr", type=float, default=3e-3)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--no-baseline", action="store_true", help="skip the voxel-grid CNN comparison")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")
    sp.set_defaults(func=event2vec_handler)


def event2vec_handler(args: argparse.Namespace) -> int:
    data = gesture_data(args.per_class, args.test_per_class, args.size, args.size, args.seed)
    print(
        f"{len(data.train)} training / {len(data.test)} held-out gestures, classes: {', '.join(data.names)}"
    )
    model, score = train_event2vec_model(
        data,
        args.events,
        args.epochs,
        args.dim,
        args.layers,
        args.lr,
        seed=args.seed,
        progress=not args.quiet,
        time_mode=args.time_mode,
        seq_conv=args.seq_conv,
        device=args.device,
    )
    scores = [score]
    meta = {
        "task": "event2vec",
        "label_names": data.names,
        "n_events": args.events,
        "heldout_accuracy": score.accuracy,
        "width": data.width,
        "height": data.height,
    }
    if not args.no_baseline:
        scores.append(
            train_voxel_cnn(
                data,
                epochs=args.epochs,
                lr=args.lr,
                seed=args.seed,
                progress=not args.quiet,
                device=args.device,
            )[1]
        )
        meta["baseline_voxel_cnn_accuracy"] = scores[1].accuracy
    print(f"{'model':<12}{'held-out acc':>14}{'params':>10}{'samples/s':>12}{'e2e samples/s':>15}")
    for s in scores:
        print(
            f"{s.name:<12}{s.accuracy:>14.3f}{s.params:>10,}{s.samples_per_s:>12.0f}{s.end_to_end_per_s:>15.0f}"
        )
    print(f"held-out accuracy: {score.accuracy:.3f}")
    print(f"saved {save_model(model, args.out, meta)}")
    return 0
