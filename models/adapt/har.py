"""Human-activity recognition with a spiking conv net: window → SNN input, the network, and pre-training.

An IMU window is `size` samples × C channels (ax, ay, az, gx, gy, gz), time first, as the `window`
node emits it. It is standardised per channel with the training set's mean and std, laid out
channels-first [C, size] and repeated over T steps (direct encoding; the first conv layer turns it
into spikes), so a 1-D conv runs along sensor time. The proxy architecture follows SNN_HAR (conv1d
blocks with LIF neurons, [SCIENCE 3.4]) at a smaller scale: the DFA paper's network is not public.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.snn.encoders import Encoder
from models.snn.networks import SpikingConvNet
from models.train import TrainConfig, TrainHistory, fit

from .offline import dfa_meta, fit_rule
from .ops import AdaptError

__all__ = ["HarInput", "build_har_snn", "pretrain_har", "rotate_windows"]


@dataclass(frozen=True)
class HarInput:
    """Window [size, C] (or a batch [B, size, C]) → SNN input [T, B, C, size].

    x = (window − mean) / std per channel, transposed to channels-first, direct-encoded over
    `encoder.timesteps` steps. Saved in a model file's meta under "har_input" (see `to_meta`).

    Example: `HarInput.fit(X)(X[:4]).shape` → (4 steps, 4, 6, 128) for X [N, 128, 6].
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int
    encoder: Encoder = Encoder("direct", 4)

    @classmethod
    def fit(cls, windows: np.ndarray, timesteps: int = 4) -> HarInput:
        """Per-channel statistics of training windows [N, size, C]."""
        flat = np.asarray(windows, np.float64).reshape(-1, windows.shape[-1])
        std = np.where(flat.std(0) > 1e-8, flat.std(0), 1.0)
        return cls(
            tuple(map(float, flat.mean(0))),
            tuple(map(float, std)),
            int(windows.shape[1]),
            Encoder("direct", int(timesteps)),
        )

    @property
    def channels(self) -> int:
        return len(self.mean)

    def __call__(self, windows: np.ndarray | Tensor) -> Tensor:
        # a copy when read-only (windows received in a graph are): torch warns on non-writable arrays
        arr = np.asarray(windows)
        x = torch.as_tensor(arr if arr.flags.writeable else arr.copy(), dtype=torch.float32)
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.size, self.channels):
            raise AdaptError(
                f"HAR window shape {tuple(x.shape)}: expected [{self.size}, {self.channels}] "
                f"(or a batch [B, {self.size}, {self.channels}]); set the window node's size to "
                f"{self.size} and feed all {self.channels} IMU channels"
            )
        x = (x - torch.tensor(self.mean)) / torch.tensor(self.std)
        return self.encoder(x.transpose(1, 2).contiguous())

    def to_meta(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "size": self.size,
            "encoder": self.encoder.to_dict(),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> HarInput:
        """Read the "har_input" entry of a model file's meta."""
        d = meta.get("har_input")
        if not isinstance(d, dict):
            raise AdaptError(
                "the model file has no 'har_input' meta (window size, channel mean/std, encoder): "
                "train it with `edgeloop train har` or models.adapt.pretrain_har"
            )
        return cls(tuple(d["mean"]), tuple(d["std"]), int(d["size"]), Encoder.from_dict(d["encoder"]))


def rotate_windows(windows: np.ndarray, deg: float, rng: np.random.Generator) -> np.ndarray:
    """Turn each window's accelerometer (channels 0–2) and gyroscope (3–5) by one random rotation
    (axis uniform, angle ~ N(0, deg)), as a differently mounted sensor sees it: [N, size, 6] → same."""
    n = len(windows)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = rng.normal(size=(n, 1, 1)) * np.deg2rad(deg)
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    r = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)  # Rodrigues
    out = np.array(windows, np.float32, copy=True)
    for c in (slice(0, 3), slice(3, 6)):
        out[:, :, c] = np.einsum("nij,ntj->nti", r, windows[:, :, c]).astype(np.float32)
    return out


def build_har_snn(
    size: int = 128,
    channels: int = 6,
    n_classes: int = 6,
    conv: Sequence[int] = (16, 32),
    kernel_size: int = 7,
    pool: int = 4,
    hidden: int = 0,
    beta: float = 0.9,
) -> SpikingConvNet:
    """A 1-D spiking conv net over sensor time: [conv → LIF → max-pool] × len(conv) → linear readout."""
    return SpikingConvNet(
        channels,
        n_classes,
        input_size=size,
        dims=1,
        channels=tuple(conv),
        kernel_size=kernel_size,
        pool=pool,
        hidden=hidden,
        beta=beta,
    )


def pretrain_har(
    windows: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    timesteps: int = 4,
    epochs: int = 8,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
    rule: str = "dfa",
    feedback: str = "auto",
    feedback_scale: float | None = None,
    rotate_deg: float = 0.0,
    augment_copies: int = 2,
    **arch: Any,
) -> tuple[SpikingConvNet, dict[str, Any], TrainHistory]:
    """Train a HAR SNN on windows [N, size, C] and labels [N]; returns (model, meta, history).

    rule "dfa" trains with DFA and the feedback matrices the device will use (see `offline`), "bp"
    with BPTT (autograd). `rotate_deg` > 0 adds `augment_copies` copies of every window with the IMU
    (accelerometer and gyroscope together) turned by a random rotation of about that many degrees, as
    a differently mounted sensor would see it (`rotate_windows`). `meta` holds "har_input", "n_classes" and, for DFA, "dfa" (feedback seed,
    mode, scale) for `models.io.save_model(model, path, meta)`.
    """
    windows = np.asarray(windows, np.float32)
    labels = np.asarray(labels, np.int64)
    if windows.ndim != 3 or len(windows) != len(labels) or len(windows) == 0:
        raise AdaptError(
            f"pretrain_har: need windows [N, size, C] and N labels, got {windows.shape} and {labels.shape}"
        )
    n_classes = int(n_classes if n_classes is not None else labels.max() + 1)
    torch.manual_seed(seed)
    prep = HarInput.fit(windows, timesteps)
    if rotate_deg > 0 and augment_copies > 0:
        rng = np.random.default_rng(seed)
        windows = np.concatenate(
            [windows] + [rotate_windows(windows, rotate_deg, rng) for _ in range(augment_copies)]
        )
        labels = np.tile(labels, augment_copies + 1)
    net = build_har_snn(prep.size, prep.channels, n_classes, **arch)
    x = (torch.from_numpy(windows) - torch.tensor(prep.mean)) / torch.tensor(prep.std)
    x = x.float().transpose(1, 2).contiguous()
    cfg = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        desc=f"pretrain har ({rule})",
    )
    meta: dict[str, Any] = {
        "task": "har",
        "har_input": prep.to_meta(),
        "n_classes": n_classes,
        "label_names": [],
        "pretrain_rule": rule,
    }
    y = torch.from_numpy(labels)
    if rule == "bp":
        hist = fit(net, x, y, cfg, encode=lambda b: prep.encoder(b))
    else:
        hist = fit_rule(
            net,
            x,
            y,
            cfg,
            rule=rule,
            encode=lambda b: prep.encoder(b),
            n_classes=n_classes,
            feedback=feedback,
            feedback_scale=feedback_scale,
            feedback_seed=seed,
        )
        meta["dfa"] = dfa_meta(seed, feedback, feedback_scale)
    return net, meta, hist
