"""`edgeloop convert IN OUT`: events between AEDAT4, .npy/.npz/.csv arrays and the synthetic camera.

IN is a file (.aedat4, .npy, .npz, .csv) or `synthetic:SCENE?key=value&…` (scenes: gestures, bars,
shapes, targets; keys: duration_s, width, height, seed, step_us, shot_noise_hz, classes=a,b).
OUT's format comes from `--format` or its suffix. AEDAT4 is written with faery; an AEDAT4 → AEDAT4
copy also keeps the IMU and trigger streams. Everything streams in chunks.

The sensor size comes from IN (AEDAT4, `.npz`, a faery CSV header `t,x@W,y@H,on`, a `.npy`'s sidecar
`NAME.npy.json`) or from `--sensor-size WxH`; when neither states it, convert stops and names the
extent of the events rather than guessing. An existing OUT is kept unless `--force`.
"""

from __future__ import annotations

import argparse
import re
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
from nodes.sensors.events.arrays_io import infer_size, size_sidecar
from runtime.errors import GraphError, RecordingError

__all__ = ["register", "handler", "convert", "parse_size", "FORMATS"]

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
    sp.add_argument(
        "--sensor-size",
        metavar="WxH",
        help="sensor size, e.g. 1280x720 (default: from the input; needed for a .npy without its sidecar)",
    )
    sp.add_argument("--width", type=int, help="sensor width (as --sensor-size)")
    sp.add_argument("--height", type=int, help="sensor height (as --sensor-size)")
    sp.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    sp.add_argument("--start-us", type=int, default=0, help="skip this much from the first event (µs)")
    sp.add_argument("--end-us", type=int, help="stop this long after the first event (µs)")
    sp.add_argument(
        "--compression", choices=("lz4", "zstd", "none"), default="lz4", help="AEDAT4 compression"
    )
    sp.set_defaults(func=handler)


def parse_size(text: str) -> tuple[int, int]:
    """`WxH` (also `W,H`) as (width, height) > 0; ValueError naming the option otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*[x×,]\s*(\d+)\s*", text)
    if m is None or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise ValueError(f"--sensor-size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1280x720")
    return int(m.group(1)), int(m.group(2))


def handler(args: argparse.Namespace) -> int:
    try:
        width, height = args.width, args.height
        if args.sensor_size is not None:
            width, height = parse_size(args.sensor_size)
        n, (w, h), span = convert(
            args.input,
            args.output,
            fmt=args.format,
            width=width,
            height=height,
            start_us=args.start_us,
            end_us=args.end_us,
            compression=args.compression,
            force=args.force,
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
    force: bool = False,
) -> tuple[int, tuple[int, int], int]:
    """Convert `src` to `dst`, streaming; returns (events written, (width, height), span in µs).

    ValueError when `dst` exists and not `force`, or when neither `src` nor `width`/`height` states the
    sensor size (the message gives the events' extent)."""
    out = Path(dst)
    fmt = fmt or out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the output format of {dst!r}: use --format ({', '.join(FORMATS)})")
    if out.suffix.lower().lstrip(".") != fmt:
        out = out.with_suffix("." + fmt)
    if out.exists() and not force:
        raise ValueError(f"{out} exists; pass --force to overwrite it")
    batches, size, aux = _batches(src, start_us, end_us)
    if (size is None or size == (0, 0)) and (width is None or height is None):
        # The max x/y is a guess (a 1280×720 recording read back as 600×476): name it, do not use it.
        ew = eh = 0
        for b in batches:
            bw, bh = infer_size(b.events)
            ew, eh = max(ew, bw), max(eh, bh)
        raise ValueError(
            f"{src} does not state its sensor size (a .npy without its {size_sidecar(src).name} sidecar, "
            f"or a CSV header without x@W,y@H); its events reach x={ew - 1}, y={eh - 1}: pass "
            f"--sensor-size WxH (at least {ew}x{eh})"
        )
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
