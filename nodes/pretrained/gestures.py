"""The demo's gesture classifier: a small spiking CNN trained in seconds on the synthetic event camera, cached.

`examples/demo.yaml` films hand gestures with `event_camera.synthetic` (one batch per 1 s gesture),
turns each batch into a voxel grid (`repr.voxel_grid`) and classifies it with `snn.classifier`
(`model: pretrained:gestures`). No download: the first run generates labelled gestures with the same
camera and representation (other seeds than the graph's), trains a `SpikingConvNet` with BPTT, scores
it on held-out gestures and caches the file under the cache directory, keyed by a hash of the spec.
A file lock makes concurrent callers share one training run. Nothing here imports the runtime.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.snn import Encoder, SpikingConvNet
from models.train import TrainConfig, evaluate, fit
from nodes.pretrained.cache import cached_model, spec_hash
from nodes.sensors.events import SyntheticEventCamera, voxel_grid

__all__ = ["GestureSpec", "gesture_data", "train_gesture_snn", "pretrained_gestures"]

TRIAL_US = 1_000_000  # nodes.sensors.events.GestureSequence: one gesture per second


@dataclass(frozen=True)
class GestureSpec:
    """What the demo camera films and how the classifier is trained.

    The camera fields (width, height, classes, step_us) must match the graph's `event_camera.synthetic`
    params and `bins` its `repr.voxel_grid`; the model file records them (meta "camera", "representation").
    Training data: `train_trials` gestures from camera seed `data_seed`, held-out `test_trials` from
    `data_seed + 1` (the demo graph films seed 0). Network: conv `channels` (3×3, LIF, 2×2 max-pool) →
    linear readout, voxel bins as input channels, direct-encoded for `timesteps` steps.
    """

    width: int = 32
    height: int = 32
    classes: tuple[str, ...] = ("swipe_left", "swipe_right", "swipe_up", "swipe_down")
    step_us: int = 10_000
    bins: int = 8
    timesteps: int = 4
    channels: tuple[int, ...] = (8, 16)
    train_trials: int = 200
    test_trials: int = 100
    epochs: int = 8
    lr: float = 5e-3
    batch_size: int = 32
    data_seed: int = 1000
    seed: int = 0


def gesture_data(spec: GestureSpec, seed: int, trials: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`trials` consecutive gestures of one camera, as the demo graph sees them: voxel grids
    float32 [N, bins, H, W] of each 1 s batch, and the class shown during it (int64 [N])."""
    cam = SyntheticEventCamera(
        spec.width, spec.height, "gestures", seed, classes=list(spec.classes), step_us=spec.step_us
    )
    xs, ys = [], []
    for _ in range(trials):
        ys.append(cam.label)  # the class of the trial about to be filmed (batches are trial-aligned)
        xs.append(voxel_grid(cam.step(TRIAL_US), spec.bins, spec.width, spec.height))
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.int64)


def train_gesture_snn(spec: GestureSpec) -> tuple[SpikingConvNet, dict[str, object]]:
    """Generate the data, train with BPTT (Adam), score on held-out gestures. Returns the net and its meta."""
    t0 = time.perf_counter()
    x, y = gesture_data(spec, spec.data_seed, spec.train_trials)
    xt, yt = gesture_data(spec, spec.data_seed + 1, spec.test_trials)
    t_data = time.perf_counter() - t0
    torch.manual_seed(spec.seed)
    net = SpikingConvNet(
        spec.bins, len(spec.classes), input_size=(spec.height, spec.width), channels=spec.channels
    )
    enc = Encoder("direct", spec.timesteps)
    cfg = TrainConfig(
        epochs=spec.epochs, lr=spec.lr, batch_size=spec.batch_size, seed=spec.seed, progress=False
    )
    t1 = time.perf_counter()
    hist = fit(net, x, y, cfg, encode=enc)
    t_train = time.perf_counter() - t1
    meta: dict[str, object] = {
        "encoder": enc.to_dict(),
        "label_names": list(spec.classes),
        "n_classes": len(spec.classes),
        "camera": {
            "scene": "gestures",
            "width": spec.width,
            "height": spec.height,
            "classes": list(spec.classes),
            "step_us": spec.step_us,
            "period_us": TRIAL_US,
        },
        "representation": {"kind": "voxel_grid", "bins": spec.bins},
        "train_accuracy": hist.train_acc[-1],
        "test_accuracy": evaluate(net, xt, yt, enc),
        "train_trials": spec.train_trials,
        "test_trials": spec.test_trials,
        "data_s": t_data,
        "train_s": t_train,
        "pretrain": asdict(spec),
    }
    return net, meta


def pretrained_gestures(spec: GestureSpec, cache_dir: str | Path) -> Path:
    """The cached model file for `spec`, trained now if absent (the first caller trains; others wait)."""
    path = Path(cache_dir) / f"gestures_{spec_hash(asdict(spec))}.pt"
    return cached_model(path, lambda: train_gesture_snn(spec))
