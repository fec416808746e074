"""`edgeloop convert` and the event-array files it reads and writes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from nodes.commands.convert import convert, register
from nodes.sensors.events import AedatReader, RecordingFormatError, make_events, read_events, write_events
from runtime.errors import GraphError, RecordingError


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["convert", *argv])


def _events(n: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return make_events(
        np.sort(rng.integers(10, 900_000, n)),
        rng.integers(0, 40, n),
        rng.integers(0, 30, n),
        rng.integers(0, 2, n),
    )


@pytest.mark.parametrize("suffix", ["npy", "npz", "csv"])
def test_array_files_round_trip(tmp_path: Path, suffix: str) -> None:
    ev = _events()
    path = tmp_path / f"ev.{suffix}"
    write_events(path, [ev[:1000], ev[1000:]], 40, 30)
    back, size = read_events(path)
    assert np.array_equal(back, ev) and size == (40, 30)


def test_plain_numeric_arrays_are_accepted(tmp_path: Path) -> None:
    ev = _events()
    np.save(tmp_path / "cols.npy", np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], 1))
    back, size = read_events(tmp_path / "cols.npy")
    assert np.array_equal(back, ev) and size == (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)
    (tmp_path / "plain.csv").write_text("t,x,y,p\n5,1,2,1\n9,3,4,0\n")
    back, _ = read_events(tmp_path / "plain.csv")
    assert back["t"].tolist() == [5, 9] and back["p"].tolist() == [1, 0]


def test_event_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t,x,y,p\n5,1,2,1\n9,3,four,0\n")
    with pytest.raises(RecordingFormatError, match=r"bad\.csv:3: column 'y': 'four' is not an integer"):
        read_events(bad)
    bad.write_text("time,col,row\n1,2,3\n")
    with pytest.raises(RecordingFormatError, match=r"bad\.csv:1: header 'time,col,row' is not an event CSV"):
        read_events(bad)
    npy = tmp_path / "img.npy"
    np.save(npy, np.zeros((4, 3)))
    with pytest.raises(RecordingFormatError, match=r"shape \(4, 3\) .* is not an event array"):
        read_events(npy)
    fake = tmp_path / "fake.npz"
    fake.write_text("hello")
    with pytest.raises(
        RecordingFormatError, match=r"expected a NumPy \.npz archive, but this is a text file"
    ):
        read_events(fake)


def test_convert_chain_is_lossless(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "dvxplorer_sample.aedat4"
    ref = AedatReader(src).read_all()
    n, size, span = convert(str(src), str(tmp_path / "a.npz"))
    assert (n, size, span) == (111_954, (320, 240), 589_917)
    convert(str(tmp_path / "a.npz"), str(tmp_path / "b.csv"))
    convert(str(tmp_path / "b.csv"), str(tmp_path / "c.npy"))
    convert(str(tmp_path / "c.npy"), str(tmp_path / "d.aedat4"))
    assert np.array_equal(AedatReader(tmp_path / "d.aedat4").read_all().events, ref.events)
    assert handler_ok(str(src), str(tmp_path / "copy.aedat4"))
    copy = AedatReader(tmp_path / "copy.aedat4").read_all()
    assert np.array_equal(copy.events, ref.events) and np.array_equal(copy.imus_raw, ref.imus_raw)
    assert handler_ok(
        str(src), str(tmp_path / "part.out"), "--format", "npy", "--start-us", "100000", "--end-us", "200000"
    )
    part, _ = read_events(tmp_path / "part.npy")
    t0 = ref.events["t"][0]
    assert np.array_equal(
        part, ref.events[(ref.events["t"] >= t0 + 100_000) & (ref.events["t"] < t0 + 200_000)]
    )


def handler_ok(*argv: str) -> bool:
    args = _parse(*argv)
    return bool(args.func(args) == 0)


def test_convert_synthetic_source(tmp_path: Path) -> None:
    out = tmp_path / "g.aedat4"
    assert handler_ok("synthetic:gestures?duration_s=0.3&width=48&height=32&seed=2", str(out))
    reader = AedatReader(out)
    ev = reader.read_all().events
    assert (reader.width, reader.height) == (48, 32) and len(ev) > 0 and ev["t"].max() <= 300_000
    assert handler_ok("synthetic:bars?duration_s=0.1&width=16&height=16", str(tmp_path / "bars.csv"))


def test_convert_errors(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="unknown option 'fps'"):
        handler_ok("synthetic:gestures?fps=3", str(tmp_path / "x.npy"))
    with pytest.raises(GraphError, match="unknown scene 'cats'"):
        handler_ok("synthetic:cats", str(tmp_path / "x.npy"))
    with pytest.raises(GraphError, match="cannot tell the output format"):
        handler_ok("synthetic:bars?duration_s=0.01", str(tmp_path / "x.mp4"))
    (tmp_path / "in.aedat4").write_text("t,x,y,p\n")
    with pytest.raises(RecordingError, match="expected an AEDAT4 recording .* text file"):
        handler_ok(str(tmp_path / "in.aedat4"), str(tmp_path / "x.npy"))


def test_npy_keeps_the_sensor_size_in_a_sidecar(tmp_path: Path) -> None:
    ev = _events()  # x < 40, y < 30 on a 1280×720 sensor
    write_events(tmp_path / "big.npz", ev, 1280, 720)
    assert convert(str(tmp_path / "big.npz"), str(tmp_path / "big.npy"))[1] == (1280, 720)
    assert np.array_equal(np.load(tmp_path / "big.npy"), ev)  # plain np.load still reads it
    assert (tmp_path / "big.npy.json").exists()
    assert convert(str(tmp_path / "big.npy"), str(tmp_path / "back.npz"))[1] == (1280, 720)
    assert read_events(tmp_path / "back.npz")[1] == (1280, 720)


def test_npy_without_a_stated_size_needs_sensor_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ev = _events()
    np.save(tmp_path / "plain.npy", ev)
    with pytest.raises(
        GraphError, match=r"plain\.npy does not state its sensor size.*x=39, y=29.*--sensor-size"
    ):
        handler_ok(str(tmp_path / "plain.npy"), str(tmp_path / "out.npz"))
    assert not (tmp_path / "out.npz").exists()
    assert handler_ok(str(tmp_path / "plain.npy"), str(tmp_path / "out.npz"), "--sensor-size", "1280x720")
    assert read_events(tmp_path / "out.npz")[1] == (1280, 720)
    assert "1280×720" in capsys.readouterr().err
    with pytest.raises(GraphError, match=r"--sensor-size '12x': expected WIDTHxHEIGHT"):
        handler_ok(str(tmp_path / "plain.npy"), str(tmp_path / "o2.npz"), "--sensor-size", "12x")


def test_convert_does_not_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "g.npz"
    out.write_bytes(b"keep me")
    with pytest.raises(GraphError, match=r"g\.npz exists; pass --force to overwrite it"):
        handler_ok("synthetic:bars?duration_s=0.05&width=16&height=16", str(out))
    assert out.read_bytes() == b"keep me"
    assert handler_ok("synthetic:bars?duration_s=0.05&width=16&height=16", str(out), "--force")
    assert read_events(out)[1] == (16, 16)
