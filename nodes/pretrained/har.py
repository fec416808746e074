"""Training data for the wearable HAR loop (synthetic subjects or IMU CSV recordings) and a cached pre-trained model.

A graph that names no model file can still run from a fresh clone: the adapter nodes call
`pretrained_model(spec, cache_dir)`, which trains a small spiking net once (on clean synthetic subjects,
or on the CSV recordings the spec lists) and caches it under `cache_dir`, keyed by a hash of the spec
(and of the recordings' sizes and times). A file lock makes concurrent nodes share one training run.
Nothing here imports the runtime: the benchmark and tests use it directly.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.adapt.har import pretrain_har
from nodes.pretrained.cache import cached_model, spec_hash
from nodes.sensors.imu import ACTIVITIES, ImuRecording, SyntheticImu, make_windows, read_imu_csv, resample

__all__ = [
    "PretrainSpec",
    "pretrain_spec",
    "synthetic_subject",
    "load_recordings",
    "windows_of",
    "pretrained_model",
]


@dataclass(frozen=True)
class PretrainSpec:
    """How to pre-train the HAR classifier when a graph gives no model file.

    recordings: IMU CSV files or globs (the `t_s,ax,ay,az,gx,gy,gz,label` layout); empty = synthetic
    subjects `0..subjects−1` (seeded, `subject_shift` spread, `minutes` each). Windows of `window`
    samples every `hop` at `rate_hz` (UCI-HAR: 128 / 64 at 50 Hz); pure-label windows only.
    label_names: the classes in order; labels in the CSVs that it lacks are appended as first seen
    (the model file's meta "label_names" is the whole table). rule: "dfa" (aligns the net with the
    device's feedback matrices) or "bp". conv: channels per
    conv block; epochs/seed: training; rotate_deg/augment_copies: sensor-mounting augmentation
    (many subjects with random mountings generalise better to an unseen wearer).
    """

    recordings: tuple[str, ...] = ()
    subjects: int = 24
    minutes: float = 1.0
    subject_shift: float = 1.0
    rate_hz: float = 50.0
    window: int = 128
    hop: int = 64
    rule: str = "dfa"
    conv: tuple[int, ...] = (16, 32)
    timesteps: int = 4
    epochs: int = 8
    rotate_deg: float = 15.0
    augment_copies: int = 2
    seed: int = 0
    label_names: tuple[str, ...] = field(default=ACTIVITIES)


def pretrain_spec(options: dict[str, Any], recordings: Sequence[str] = ()) -> PretrainSpec:
    """A `PretrainSpec` from a graph's `pretrain_options` (lists become tuples); unknown keys are named."""
    valid = [f.name for f in fields(PretrainSpec)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"pretrain_options: unknown key(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    opts: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    if recordings:
        opts["recordings"] = tuple(recordings)
    try:
        return PretrainSpec(**opts)
    except TypeError as exc:
        raise ValueError(f"pretrain_options: {exc}") from exc


def synthetic_subject(
    subject_seed: int, minutes: float, *, shift: float = 1.0, rate_hz: float = 50.0, seed: int = 0
) -> ImuRecording:
    """One synthetic subject doing every activity in shuffled 15–45 s bouts for `minutes`."""
    rng = np.random.default_rng([seed, subject_seed])
    bouts: list[tuple[str, float]] = []
    while sum(d for _, d in bouts) < minutes * 60.0:
        bouts += [(str(a), float(rng.uniform(15, 45))) for a in rng.permutation(list(ACTIVITIES))]
    imu = SyntheticImu(bouts, subject_seed=subject_seed, rate_hz=rate_hz, subject_shift=shift, seed=seed)
    return imu.recording(minutes * 60.0)


def load_recordings(
    patterns: Sequence[str], rate_hz: float | None = None, label_names: Sequence[str] = ACTIVITIES
) -> list[ImuRecording]:
    """Read every CSV matching `patterns` (sorted), resampled to `rate_hz` when given.

    Labels are numbered by one table for all files: `label_names` first, then names they do not hold
    in order of first appearance over the files; every recording's `label_names` is that whole table.
    """
    paths = sorted({p for pat in patterns for p in (glob.glob(pat) or [pat])})
    names = list(label_names)
    recs = []
    for path in paths:
        rec = read_imu_csv(path, names)
        names = list(rec.label_names)  # names + this file's new ones: earlier numbers are kept
        recs.append(rec)
    recs = [replace(r, label_names=tuple(names)) for r in recs]
    return [resample(r, rate_hz) if rate_hz else r for r in recs]


def windows_of(
    recs: Sequence[ImuRecording], size: int, hop: int, label: Literal["last", "majority", "pure"] = "pure"
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled windows [N, size, 6] and labels [N] from several recordings."""
    parts = [make_windows(r, size, hop, label) for r in recs if r.labels is not None]
    if not parts:
        raise ValueError(
            "no labelled recordings to make training windows from (the CSVs need a 'label' column)"
        )
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _spec_key(spec: PretrainSpec) -> str:
    d = asdict(spec)
    if spec.recordings:
        d["files"] = [
            (p, Path(p).stat().st_size, Path(p).stat().st_mtime_ns)
            for p in sorted({q for pat in spec.recordings for q in glob.glob(pat)})
        ]
    return spec_hash(d)


def pretrained_model(spec: PretrainSpec, cache_dir: str | Path) -> Path:
    """The cached model file for `spec`, trained now if absent (the first caller trains; others wait)."""

    def train() -> tuple[Any, dict[str, Any]]:
        names = list(spec.label_names)
        if spec.recordings:  # the data set's labels: spec.label_names, then any others in it
            recs = load_recordings(spec.recordings, spec.rate_hz, spec.label_names)
            names = list(recs[0].label_names) if recs else names
        else:
            recs = [
                synthetic_subject(
                    s, spec.minutes, shift=spec.subject_shift, rate_hz=spec.rate_hz, seed=spec.seed
                )
                for s in range(spec.subjects)
            ]
        x, y = windows_of(recs, spec.window, spec.hop)
        net, meta, hist = pretrain_har(
            x,
            y,
            n_classes=len(names),
            timesteps=spec.timesteps,
            epochs=spec.epochs,
            seed=spec.seed,
            rule=spec.rule,
            conv=spec.conv,
            rotate_deg=spec.rotate_deg,
            augment_copies=spec.augment_copies,
        )
        meta.update(
            label_names=names,
            train_accuracy=hist.train_acc[-1],
            train_windows=len(x),
            pretrain=asdict(spec),
        )
        return net, meta

    return cached_model(Path(cache_dir) / f"har_{spec.rule}_{_spec_key(spec)}.pt", train)
