"""`edgeloop eval MODEL --data DIR`: accuracy of a trained HAR model per recording and per window, with a confusion matrix.

DIR holds IMU CSVs in the layout `edgeloop train har` reads (`t_s,ax,ay,az,gx,gy,gz,label`, one file per
recording). Each recording is resampled to the model's rate and cut into the model's windows (size from
its `har_input` meta, hop as trained); windows that straddle two labels or hold unlabelled samples are
skipped, as in training. Classes are the model's `label_names`.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.adapt.har import HarInput
from models.io import ModelFileError, load_checkpoint
from models.train import logits_of
from nodes.sensors.imu import ImuRecording, labelled_windows
from runtime.errors import RecordingError
from sim_hw import BackendConfigError, CostReport, make_backend, resolve_backend_spec

from .train import load_har_folder

__all__ = [
    "RecordingScore",
    "EvalResult",
    "evaluate_har",
    "confusion_text",
    "write_confusion_png",
    "register",
    "handler",
]


@dataclass
class RecordingScore:
    """One recording's windows and how many the model classified correctly."""

    file: str
    windows: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.windows if self.windows else float("nan")


@dataclass
class EvalResult:
    """Per-recording scores, the confusion matrix (rows: true class, columns: predicted; counts of
    windows) and the backend's mean cost per window (pJ, ns, MACs)."""

    label_names: list[str]
    recordings: list[RecordingScore]
    confusion: np.ndarray
    backend: str = "ideal"
    cost_per_window: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # file → labels the model does not know

    @property
    def windows(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Per-window accuracy over all recordings."""
        return float(np.trace(self.confusion)) / self.windows if self.windows else float("nan")

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:  # JSON has no NaN
            return None if math.isnan(v) else v

        return {
            "label_names": self.label_names,
            "recordings": [
                {"file": r.file, "windows": r.windows, "correct": r.correct, "accuracy": num(r.accuracy)}
                for r in self.recordings
            ],
            "windows": self.windows,
            "accuracy": num(self.accuracy),
            "confusion": self.confusion.tolist(),
            "backend": self.backend,
            "cost_per_window": self.cost_per_window,
            "skipped_labels": self.skipped,
        }


def _model_labels(rec: ImuRecording, folder_names: list[str], model_names: list[str]) -> ImuRecording:
    """The recording with its labels as indices into the model's names (-1 for names it does not know)."""
    table = np.array([model_names.index(n) if n in model_names else -1 for n in folder_names] or [-1])
    lab = None if rec.labels is None else np.where(rec.labels >= 0, table[np.clip(rec.labels, 0, None)], -1)
    return ImuRecording(rec.t_s, rec.accel, rec.gyro, lab, tuple(model_names))


def evaluate_har(
    model: str | Path,
    data: str | Path,
    *,
    backend: str = "ideal",
    hop: int | None = None,
    batch_size: int | None = None,
    skip_unknown: bool = False,
) -> EvalResult:
    """Classify every pure window of every `*.csv` in `data` with the HAR model file `model`.

    `backend`: a spec as in `snn.classifier` ("ideal", "rram:adc_bits=6", "loas"). `batch_size`: windows
    per forward pass (default 256 on `ideal`; 1 on other backends, as `snn.classifier` runs them, so
    the cost per window is what a deployed node pays). A recording label the model does not know is
    an error naming the file, unless `skip_unknown` (those windows are left out and listed in `skipped`).
    """
    try:
        ck = load_checkpoint(model)
    except ModelFileError as exc:
        raise RecordingError(f"eval: {exc}") from exc
    if "har_input" not in ck.meta:
        raise RecordingError(
            f"eval: {model}: not a HAR model (no 'har_input' meta); train one with `edgeloop train har`"
        )
    prep = HarInput.from_meta(ck.meta)
    names = [str(n) for n in ck.meta.get("label_names") or []]
    if not names:
        raise RecordingError(f"eval: {model}: the model file has no 'label_names' meta")
    try:
        kind, params = resolve_backend_spec(backend, None)
        hw = make_backend(kind, **params).prepare(ck.model)
    except BackendConfigError as exc:
        raise RecordingError(f"eval: --backend {backend!r}: {exc}") from exc
    recs, folder_names, paths = load_har_folder(data, float(ck.meta.get("rate_hz", 50.0)))
    hop = hop or int(ck.meta.get("hop") or prep.size // 2)
    bs = batch_size or (256 if kind == "ideal" else 1)
    unknown = [n for n in folder_names if n not in names]
    skipped: dict[str, list[str]] = {}
    for r, p in zip(recs, paths, strict=True):
        present = [] if r.labels is None else np.unique(r.labels[r.labels >= 0]).tolist()
        here = [folder_names[i] for i in present if folder_names[i] in unknown]
        if here and not skip_unknown:
            raise RecordingError(
                f"eval: {p}: label {here[0]!r} is not a class of {model} (classes: {', '.join(names)}); "
                "pass --skip-unknown to leave those windows out"
            )
        if here:
            skipped[p.name] = here
    cm = np.zeros((len(names), len(names)), np.int64)
    scores, cost = [], CostReport(backend=kind)
    for r, p in zip(recs, paths, strict=True):
        x, y = labelled_windows([_model_labels(r, folder_names, names)], prep.size, hop)
        pred = np.zeros(len(x), np.int64)
        for i in range(0, len(x), bs):
            out, c = hw.run(prep(x[i : i + bs]))
            pred[i : i + bs] = logits_of(out).argmax(1).cpu().numpy()
            cost = cost + c
        np.add.at(cm, (y, pred), 1)
        scores.append(RecordingScore(p.name, len(x), int((pred == y).sum())))
    n = max(int(cm.sum()), 1)
    per_window = {
        "energy_pj": cost.total_energy_pj / n,
        "latency_ns": cost.total_latency_ns / n,
        "macs": cost.total_macs / n,
    }
    return EvalResult(names, scores, cm, kind, per_window, skipped)


def confusion_text(cm: np.ndarray, names: list[str]) -> str:
    """The confusion matrix as aligned text: one row per true class, one column per predicted class."""
    head = "true \\ predicted"
    first = max([len(n) for n in names] + [len(head)]) + 2
    width = max([len(n) for n in names] + [len(str(int(cm.max(initial=0)))), 4]) + 2
    lines = [head.ljust(first) + "".join(n.rjust(width) for n in names)]
    for name, row in zip(names, cm, strict=True):
        lines.append(name.ljust(first) + "".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def write_confusion_png(cm: np.ndarray, names: list[str], path: str | Path, title: str = "") -> Path:
    """Draw the confusion matrix (counts, rows true, columns predicted) into a PNG file."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = 1.0 + 0.6 * len(names)
    fig = Figure(figsize=(side + 1.5, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    top = cm.max(initial=0)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(int(v)), ha="center", va="center", color="white" if v > top / 2 else "black")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _fmt(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.3f}"


def handler(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    res = evaluate_har(
        args.model,
        args.data,
        backend=args.backend,
        hop=args.hop,
        batch_size=args.batch_size,
        skip_unknown=args.skip_unknown,
    )
    width = max([len(r.file) for r in res.recordings] + [9])
    print(f"{'recording'.ljust(width)}  windows  accuracy")
    for r in res.recordings:
        print(f"{r.file.ljust(width)}  {r.windows:7d}  {_fmt(r.accuracy):>8}")
    for file, labels in res.skipped.items():
        print(f"skipped in {file}: windows labelled {', '.join(labels)} (not classes of the model)")
    print(
        f"per-window accuracy: {_fmt(res.accuracy)} on {res.windows} windows of {len(res.recordings)} recordings"
    )
    print(confusion_text(res.confusion, res.label_names))
    c = res.cost_per_window
    print(
        f"backend {res.backend}: {c['energy_pj']:.1f} pJ, {c['latency_ns']:.1f} ns, "
        f"{c['macs']:.0f} MACs per window"
    )
    if args.png:
        print(f"wrote {write_confusion_png(res.confusion, res.label_names, args.png, Path(args.model).name)}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps({"model": str(args.model), "data": str(args.data), **res.to_dict()}, indent=2)
        )
        print(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sp = subparsers.add_parser(
        "eval",
        help="accuracy of a trained HAR model on a folder of IMU CSVs (per recording, per window, confusion)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("model", help="model file from `edgeloop train har`")
    sp.add_argument("--data", required=True, help="folder of IMU CSVs (t_s,ax,ay,az,gx,gy,gz,label)")
    sp.add_argument(
        "--backend",
        default="ideal",
        help='hardware to run on, as in snn.classifier: "ideal" (default), "rram:adc_bits=6", "loas"',
    )
    sp.add_argument(
        "--hop", type=int, help="samples between windows (default: the hop the model was trained with)"
    )
    sp.add_argument(
        "--batch-size", type=int, help="windows per forward pass (default 256 on ideal, 1 on other backends)"
    )
    sp.add_argument(
        "--skip-unknown", action="store_true", help="leave out windows whose label the model does not know"
    )
    sp.add_argument("--png", help="write the confusion matrix as a PNG here")
    sp.add_argument("--json", help="write the results as JSON here")
    sp.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    sp.set_defaults(func=handler)
