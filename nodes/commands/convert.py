"""`edgeloop convert IN OUT`: events between AEDAT4, .npy/.npz/.csv arrays and the synthetic camera.

IN is a file (.aedat4, .npy, .npz, .csv) or `synthetic:SCENE?key=value&…` (scenes: gestures, bars,
shapes, targets; keys: duration_s, width, height, seed, step_us, shot_noise_hz, classes=a,b).
OUT's format comes from `--format` or its suffix. AEDAT4 is written with faery; an AEDAT4 → AEDAT4
copy also keeps the IMU and trigger streams. Everything streams in chunks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import numpy as np

from nodes.sensors.events import (
    AedatReader,
    AedatWriter,
    Batch,
    EventArrayWriter,
    EventBatcher,
    RecordingFormatError,
    Segment,
    SyntheticEventCamera,
    read_event_chunks,
    sniff,
)
from nodes.sensors.events.arrays_io import infer_size
from runtime.errors import GraphError, RecordingError

__all__ = ["register", "handler", "convert", "FORMATS"]

FORMATS = ("aedat4", "npy", "npz", "csv")
_SYNTH_KEYS = {
    "duration_s": float,
    "width": int,
    "height": int,
    "seed": int,
    "step_us": int,
    "shot_noise_hz": float,
    "classes": str,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sp = subparsers.add_parser(
        "convert",
        help="convert events between AEDAT4, npy/npz/csv and synthetic sources",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("input", help="file (.aedat4 .npy .npz .csv) or synthetic:SCENE?duration_s=2&width=128")
    sp.add_argument("output", help="output file")
    sp.add_argument("--format", choices=FORMATS, help="output format (default: from the output suffix)")
    sp.add_argument("--width", type=int, help="sensor width (default: from the input, else max x + 1)")
    sp.add_argument("--height", type=int, help="sensor height (default: from the input, else max y + 1)")
    sp.add_argument("--start-us", type=int, default=0, help="skip this much from the first event (µs)")
    sp.add_argument("--end-us", type=int, help="stop this long after the first event (µs)")
    sp.add_argument(
        "--compression", choices=("lz4", "zstd", "none"), default="lz4", help="AEDAT4 compression"
    )
    sp.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    try:
        n, (w, h), span = convert(
            args.input,
            args.output,
            fmt=args.format,
            width=args.width,
            height=args.height,
            start_us=args.start_us,
            end_us=args.end_us,
            compression=args.compression,
        )
    except RecordingFormatError as exc:
        raise RecordingError(str(exc)) from exc
    except ValueError as exc:
        raise GraphError(f"convert: {exc}") from exc
    print(f"wrote {n:,} events ({w}×{h}, {span / 1e6:.3f} s) to {args.output}", file=sys.stderr)
    return 0


def _synthetic(spec: str) -> tuple[Iterator[Segment], tuple[int, int]]:
    scene, _, query = spec[len("synthetic:") :].partition("?")
    opts: dict[str, Any] = {"duration_s": 2.0, "width": 128, "height": 128, "seed": 0}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _SYNTH_KEYS:
            raise ValueError(f"{spec}: unknown option {key!r} (options: {', '.join(_SYNTH_KEYS)})")
        try:
            opts[key] = _SYNTH_KEYS[key](value)
        except ValueError:
            raise ValueError(
                f"{spec}: option {key}={value!r} is not a valid {_SYNTH_KEYS[key].__name__}"
            ) from None
    kw = {k: opts[k] for k in ("step_us", "shot_noise_hz") if k in opts}
    classes = opts["classes"].split(",") if "classes" in opts else None
    cam = SyntheticEventCamera(
        opts["width"], opts["height"], scene or "gestures", opts["seed"], classes=classes, **kw
    )
    total = int(opts["duration_s"] * 1e6)

    def gen() -> Iterator[Segment]:
        while cam.t_us < total:
            yield Segment(events=cam.step(min(100_000, total - cam.t_us)))

    return gen(), (cam.width, cam.height)


def _open(src: str) -> tuple[Iterator[Segment | np.ndarray], tuple[int, int] | None, dict[str, bool]]:
    if src.startswith("synthetic:"):
        segs, size = _synthetic(src)
        return segs, size, {}
    path = Path(src)
    if path.suffix.lower() == ".aedat4" or (path.exists() and sniff(path)[0] == "aedat4"):
        reader = AedatReader(path)
        return (
            reader.segments(),
            (reader.width, reader.height),
            {"imus": reader.has("imus"), "triggers": reader.has("triggers")},
        )
    chunks, stated = read_event_chunks(path)
    return chunks, stated, {}


def _batches(
    src: str, start_us: int, end_us: int | None
) -> tuple[Iterator[Batch], tuple[int, int] | None, dict[str, bool]]:
    segs, size, aux = _open(src)
    return iter(EventBatcher(segs, window_us=1_000_000, start_us=start_us, end_us=end_us)), size, aux


def convert(
    src: str,
    dst: str,
    *,
    fmt: str | None = None,
    width: int | None = None,
    height: int | None = None,
    start_us: int = 0,
    end_us: int | None = None,
    compression: Literal["lz4", "zstd", "none"] = "lz4",
) -> tuple[int, tuple[int, int], int]:
    """Convert `src` to `dst`, streaming; returns (events written, (width, height), span in µs)."""
    out = Path(dst)
    fmt = fmt or out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the output format of {dst!r}: use --format ({', '.join(FORMATS)})")
    if out.suffix.lower().lstrip(".") != fmt:
        out = out.with_suffix("." + fmt)
    batches, size, aux = _batches(src, start_us, end_us)
    if (size is None or size == (0, 0)) and (width is None or height is None):
        # An array file without a stated size: one pass to find the extent, then stream again.
        ew = eh = 0
        for b in batches:
            bw, bh = infer_size(b.events)
            ew, eh = max(ew, bw), max(eh, bh)
        size = (ew, eh)
        batches, _, aux = _batches(src, start_us, end_us)
    w = width or (size[0] if size else 0)
    h = height or (size[1] if size else 0)
    n, t_first, t_last = 0, 0, 0
    writer: AedatWriter | EventArrayWriter
    if fmt == "aedat4":
        writer = AedatWriter(
            out,
            w,
            h,
            imus=aux.get("imus", False),
            triggers=aux.get("triggers", False),
            compression=compression,
        )
    else:
        writer = EventArrayWriter(out, w, h)
    with writer:
        for b in batches:
            if isinstance(writer, AedatWriter):
                if aux.get("imus") and b.imus_raw is not None and len(b.imus_raw):
                    writer.write_imus(b.imus_raw)
                if aux.get("triggers") and len(b.triggers):
                    writer.write_triggers(b.triggers)
                writer.write_events(b.events)
            else:
                writer.write(b.events)
            if len(b.events):
                t_first = int(b.events["t"][0]) if n == 0 else t_first
                n += len(b.events)
                t_last = int(b.events["t"][-1])
    return n, (w, h), t_last - t_first
