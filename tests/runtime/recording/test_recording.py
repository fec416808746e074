"""MCAP recordings without processes: bit-exact round trips, truncation, corruption, wrong file types, info."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recnodes import rich_payload

from runtime.errors import CodecError, RecordingError
from runtime.message import Message
from runtime.recording import (
    GRAPH_METADATA,
    MESSAGE_ENCODING,
    RecordingReader,
    RecordingWriter,
    decode_message,
    encode_message,
    unpack_frames,
)
from runtime.recording.info import read_overview, summarize


def canon(value: Any) -> Any:
    """A comparable form in which arrays are equal only if dtype, shape and every byte are."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.descr, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canon(v) for v in value]
    return (type(value).__name__, value)


def messages(n: int, topic: str = "cam/events", seed: int = 0) -> list[Message]:
    return [Message(topic, i, 1_000_000 + 7 * i, 2_000_000 + 11 * i, rich_payload(i, seed)) for i in range(n)]


def write(path: Path, msgs: list[Message], **kw: Any) -> None:
    with RecordingWriter(path, **kw) as w:
        for m in msgs:
            w.write(m)


def read_all(path: Path) -> list[Message]:
    return [m for _, m in RecordingReader(path).messages()]


def test_message_encoding_is_bit_exact() -> None:
    for m in messages(20):
        back = decode_message(m.topic, encode_message(m))
        assert (back.seq, back.t_sense_ns, back.t_emit_ns) == (m.seq, m.t_sense_ns, m.t_emit_ns)
        assert canon(back.payload) == canon(m.payload)
        assert all(
            a.flags.aligned for a in (back.payload["events"], back.payload["frame"], back.payload["z"])
        )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_message_data_raises_only_codec_errors(data: bytes) -> None:
    try:
        decode_message("x/y", data)
    except CodecError:
        pass


def test_frame_table_that_overruns_is_rejected() -> None:
    good = encode_message(messages(1)[0])
    with pytest.raises(CodecError):
        unpack_frames(good[:-9])
    with pytest.raises(CodecError):
        unpack_frames(good + b"\0" * 16)


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_writer_reader_round_trip(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "run.mcap"
    msgs = messages(300) + messages(50, topic="imu/sample", seed=1)
    write(path, msgs, compression=compression, chunk_bytes=16 * 1024, metadata={"name": "g"})
    reader = RecordingReader(path)
    got = [m for _, m in reader.messages()]
    assert reader.complete
    assert [(m.topic, m.seq, m.t_sense_ns, m.t_emit_ns) for m in got] == [
        (m.topic, m.seq, m.t_sense_ns, m.t_emit_ns) for m in msgs
    ]
    assert [canon(m.payload) for m in got] == [canon(m.payload) for m in msgs]
    assert reader.metadata[GRAPH_METADATA] == {"name": "g"}
    assert set(reader.compressions) == {compression}
    assert {c.encoding for c in reader.channels.values()} == {MESSAGE_ENCODING}
    assert read_overview(path).topics == {"cam/events": 300, "imu/sample": 50}


def test_mcap_fields_carry_emit_sense_and_sequence(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write(path, messages(5))
    entries = list(RecordingReader(path).entries())
    assert [(e.log_time_ns, e.publish_time_ns, e.sequence) for e in entries] == [
        (2_000_000 + 11 * i, 1_000_000 + 7 * i, i) for i in range(5)
    ]


def test_window_skips_whole_chunks_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write(path, messages(400), chunk_bytes=4096)
    lo, hi = 2_000_000 + 11 * 100, 2_000_000 + 11 * 250
    got = [e.sequence for e in RecordingReader(path).entries(start_ns=lo, end_ns=hi)]
    assert got == list(range(100, 251))
    assert [e.topic for e in RecordingReader(path).entries(topics={"nope/x"})] == []


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_truncated_file_delivers_every_complete_message_then_a_clear_error(
    tmp_path: Path, compression: str
) -> None:
    full = tmp_path / "full.mcap"
    write(full, messages(400), compression=compression, chunk_bytes=8 * 1024)
    written = [e.data for e in RecordingReader(full).entries()]  # raw bytes: the strictest comparison
    data = full.read_bytes()
    cut_path = tmp_path / "cut.mcap"
    delivered_before = 0
    for cut in sorted({9, 40, *range(100, len(data), max(1, len(data) // 37)), len(data) - 30}):
        cut_path.write_bytes(data[:cut])
        reader = RecordingReader(cut_path)
        got: list[bytes] = []
        try:
            got.extend(e.data for e in reader.entries())
        except RecordingError as exc:
            assert str(cut_path) in str(exc) and "truncated at byte" in str(exc)
            assert f"delivered {len(got):,} complete message" in str(exc)
        else:
            assert reader.complete and got == written  # a cut inside the summary: every message is there
            continue
        assert got == written[: len(got)]  # a bit-exact prefix of what was written
        assert len(got) >= delivered_before  # never fewer as the cut moves later
        delivered_before = len(got)
    assert delivered_before > len(written) * 3 // 4  # partial chunks are read too, so late cuts lose little


def test_killed_recorder_file_without_summary_reads_to_the_last_flush(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    w = RecordingWriter(path, chunk_bytes=1 << 20)
    for m in messages(120):
        w.write(m)
    w.flush()
    for m in messages(10, topic="late/x"):
        w.write(m)  # never flushed: lost with the process
    w._file.flush()  # what the OS has when the process dies
    got: list[Message] = []
    with pytest.raises(RecordingError, match="no end-of-data marker"):
        for _, m in RecordingReader(path).messages():
            got.append(m)
    assert len(got) == 120
    info = summarize(path)
    assert (
        not info.complete and info.topics["cam/events"].messages == 120 and "truncated" in (info.error or "")
    )
    w._file.close()


def test_corrupt_chunk_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write(path, messages(200), compression="none", chunk_bytes=1 << 20)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="corrupt record at byte .*checksum"):
        read_all(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"#!AER-DAT4.0\r\n#Format: RAW\r\n", "AEDAT 4.0 event-camera recording"),
        (b"t_s,ax,ay,az\n0.0,1,2,3\n0.02,1,2,3\n", "CSV text file"),
        (b"name: demo\nnodes:\n  - {id: a, uses: signal.sine}\n", "YAML file (an edgeloop graph?"),
        (b"", "an empty file"),
        (b"\x00\x01\x02\x03garbage\xff\xfe", "unrecognised binary file"),
        (b"SQLite format 3\x00....", "SQLite database"),
    ],
)
def test_wrong_file_type_says_what_it_is(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "thing.mcap"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as err:
        RecordingReader(path)
    assert f"{path}: not an MCAP recording: it is" in str(err.value)
    assert expected in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="missing"):
        summarize(tmp_path / "nope.mcap")
    with pytest.raises(RecordingError, match="a directory"):
        summarize(tmp_path)


def test_real_aedat4_file_is_named(shared_data: Path) -> None:
    with pytest.raises(RecordingError, match="AEDAT 4.0"):
        RecordingReader(shared_data / "dvxplorer_sample.aedat4")


def test_info_counts_messages_rates_gaps_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    seqs = [0, 1, 2, 5, 6, 0, 1, 2, 3, 4]  # a gap of 2, then the producer restarted
    with RecordingWriter(path, metadata={"name": "g", "text": "name: g"}) as w:
        w.add_topic("quiet/out")
        for k, s in enumerate(seqs):
            w.write(Message("a/out", s, 0, 1_000_000_000 + k * 10_000_000, k))
        for k, s in enumerate(range(2**32 - 2, 2**32 + 2)):  # MCAP keeps 32 bits: a wrap is not a restart
            w.write(Message("w/out", s, 0, 1_000_000_000 + k, k))
    info = summarize(path)
    a, wrap = info.topics["a/out"], info.topics["w/out"]
    assert (a.messages, a.gaps, a.restarts, a.seq_last) == (10, 2, 1, 4)
    assert (wrap.gaps, wrap.restarts, wrap.seq_last) == (0, 0, 2**32 + 1)
    assert a.rate_hz == pytest.approx(100.0)
    assert info.topics["quiet/out"].messages == 0
    assert info.complete and info.error is None and info.duration_s == pytest.approx(0.09)
    d = info.to_dict()
    json.dumps(d)
    assert "text" not in d["graph"] and d["topics"]["a/out"]["gaps"] == a.gaps


def test_info_command_on_a_truncated_file_prints_what_is_there_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from runtime.recording.cli import register

    path = tmp_path / "run.mcap"
    write(path, messages(200), chunk_bytes=4096, metadata={"name": "g", "filename": "g.yaml"})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for extra in ([], ["--json"]):
        args = parser.parse_args(["info", str(path), *extra])
        assert args.func(args) == 1
    text, js = capsys.readouterr().out.split("\n{", 1)
    assert "INCOMPLETE" in text and "cam/events" in text and "truncated at byte" in text
    d = json.loads("{" + js)
    assert not d["complete"] and 0 < d["topics"]["cam/events"]["messages"] < 200 and d["graph"]["name"] == "g"
