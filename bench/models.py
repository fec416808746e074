"""`edgeloop bench models`: SNN step latency (torch vs onnxruntime), event2vec vs voxel-CNN, HAR accuracy."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.adapt.har import build_har_snn
from models.onnx_export import export_snn_step
from models.quant.ort import make_session
from models.snn import SpikingMLP, SpikingNet
from runtime.benchkit import Case

__all__ = ["run", "median_us", "snn_step_latency", "event2vec_vs_voxel", "har_accuracy"]


def median_us(fn: Callable[[], Any], reps: int) -> float:
    """Median wall time of `fn` in µs over `reps` calls after five warm-ups."""
    for _ in range(5):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def snn_step_latency(reps: int) -> list[Case]:
    """One time step at batch 1, 1 thread: torch `step()` (no grad) vs the exported one-step ONNX graph."""
    torch.manual_seed(0)
    nets: dict[str, tuple[SpikingNet, tuple[int, ...]]] = {
        "HAR conv SNN 6x128 (16,32)": (build_har_snn(128, 6, 6), (1, 6, 128)),
        "spiking MLP 6-64-64-6": (SpikingMLP([6, 64, 64, 6]), (1, 6)),
    }
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (net, shape) in nets.items():
            net.eval()
            x = torch.rand(shape)
            state = net.step(x).state
            with torch.no_grad():
                t_torch = median_us(lambda net=net, x=x, state=state: net.step(x, state), reps)
            spec = export_snn_step(net, Path(tmp) / "s.onnx", x)
            sess = make_session(Path(tmp) / "s.onnx", 1)
            feed = {
                "x": x.numpy(),
                **{
                    n: np.zeros(s, np.float32)
                    for n, s in zip(spec.state_inputs, spec.state_shapes, strict=True)
                },
            }
            t_ort = median_us(lambda sess=sess, feed=feed: sess.run(None, feed), reps)
            cases += [
                Case(f"SNN step torch: {name}", t_torch, "us"),
                Case(f"SNN step onnxruntime: {name}", t_ort, "us", baseline=t_torch),
            ]
    return cases


def event2vec_vs_voxel(
    per_class: int, test_per_class: int, epochs: int, n_events: int, targets: bool = True
) -> list[Case]:
    """Synthetic gestures: event2vec vs a voxel-grid CNN, with the paper's claims as targets (higher accuracy,
    fewer parameters, faster inference than dense representations [SCIENCE 2.5])."""
    from nodes.commands.train_e2v import gesture_data, train_event2vec_model, train_voxel_cnn

    data = gesture_data(per_class, test_per_class)
    tag = "" if targets else " (quick: tiny data, not a result)"
    _, e2v = train_event2vec_model(data, n_events, epochs, dim=32, progress=False)
    _, cnn = train_voxel_cnn(data, epochs=epochs, progress=False)
    return [
        Case(
            f"event2vec held-out accuracy vs voxel CNN{tag}",
            e2v.accuracy,
            "acc",
            baseline=cnn.accuracy,
            target="ratio >= 1" if targets else None,
        ),
        Case(
            "event2vec parameters vs voxel CNN",
            float(e2v.params),
            "params",
            baseline=float(cnn.params),
            target="ratio <= 1",
        ),
        Case(
            "event2vec inference vs voxel CNN (model only)",
            e2v.samples_per_s,
            "samples/s",
            baseline=cnn.samples_per_s,
            target="ratio >= 1" if targets else None,
        ),
        Case(
            "event2vec inference vs voxel CNN (from raw events)",
            e2v.end_to_end_per_s,
            "samples/s",
            baseline=cnn.end_to_end_per_s,
        ),
        Case("event2vec training time vs voxel CNN", e2v.train_s, "s", baseline=cnn.train_s),
    ]


def har_accuracy(subjects: int, minutes: float, epochs: int) -> list[Case]:
    """`edgeloop train har --synthetic N`: held-out accuracy on unseen synthetic subjects."""
    from nodes.commands.train import train_har
    from nodes.sensors.imu.synthetic import write_synthetic_dataset

    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_dataset(Path(tmp) / "csv", n_subjects=subjects, minutes_per_subject=minutes, seed=0)
        res = train_har(Path(tmp) / "csv", Path(tmp) / "har.pt", epochs=epochs, progress=False)
    return [
        Case(
            f"HAR SNN held-out accuracy ({subjects} synthetic subjects, 25% held out)",
            res.heldout_accuracy,
            "acc",
        )
    ]


def run(argv: list[str]) -> list[Case]:
    p = argparse.ArgumentParser(prog="edgeloop bench models")
    p.add_argument("--quick", action="store_true", help="tiny sizes (< 30 s): exercises every part")
    args = p.parse_args(argv)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if args.quick:
            return snn_step_latency(50) + event2vec_vs_voxel(2, 1, 1, 64, targets=False)
        return snn_step_latency(500) + event2vec_vs_voxel(100, 30, 30, 256) + har_accuracy(8, 3.0, 10)
    finally:
        torch.set_num_threads(n)
