"""RecordingReader: an MCAP file front to back without its summary, so a cut-short file still reads."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import lz4.frame
import zstandard
from mcap.reader import SeekingReader

from ..codec import DEFAULT_LIMITS, CodecLimits
from ..errors import CodecError, RecordingError
from ..filetype import MCAP_MAGIC, describe_file
from ..message import Message
from .layout import decode_message

__all__ = ["RecordedEntry", "RecordingReader"]

_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_OP_METADATA, _OP_DATA_END = 0x0C, 0x0F
_RECORD_NAMES = {
    0x01: "header",
    0x02: "footer",
    0x03: "schema",
    0x04: "channel",
    0x05: "message",
    0x06: "chunk",
    0x07: "message index",
    0x08: "chunk index",
    0x09: "attachment",
    0x0A: "attachment index",
    0x0B: "statistics",
    0x0C: "metadata",
    0x0D: "metadata index",
    0x0E: "summary offset",
    0x0F: "end-of-data",
}
_MSG_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log_time, publish_time
_CHUNK_HEAD = struct.Struct("<QQQII")  # start, end, uncompressed size, uncompressed crc, compression length
_MAX_CHUNK_BYTES = 1 << 32


@dataclass(frozen=True, slots=True)
class RecordedEntry:
    """One recorded message, not yet decoded: the MCAP fields and the raw message data."""

    topic: str
    log_time_ns: int
    publish_time_ns: int
    sequence: int
    data: bytes
    offset: int  # byte offset of the record (or of its chunk) in the file

    def message(self, limits: CodecLimits = DEFAULT_LIMITS) -> Message:
        return decode_message(self.topic, self.data, limits)


@dataclass
class _Channel:
    topic: str
    encoding: str


class RecordingReader:
    """Reads an MCAP file front to back without needing its summary, so a cut-short file still reads.

    `entries()` yields every complete message, then raises RecordingError saying where the file
    stops (unless it ends properly). As it goes it collects the header, channels, metadata and the
    chunk compressions. Each `entries()` call reads the file afresh.
    """

    def __init__(self, path: str | Path, limits: CodecLimits = DEFAULT_LIMITS) -> None:
        self.path = str(path)
        self.limits = limits
        p = Path(self.path)
        head = b""
        if p.is_file():
            with p.open("rb") as f:
                head = f.read(len(MCAP_MAGIC))
        if head != MCAP_MAGIC:
            raise RecordingError(f"{self.path}: not an MCAP recording: it is {describe_file(p)}")
        self.size = p.stat().st_size
        self.channels: dict[int, _Channel] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.library = ""
        self.profile = ""
        self.compressions: dict[str, int] = {}
        self.complete = False  # the end-of-data marker was reached
        self.entries_read = 0

    def _fail(self, offset: int, what: str) -> RecordingError:
        return RecordingError(
            f"{self.path}: truncated at byte {offset:,} of {self.size:,} ({what}): delivered "
            f"{self.entries_read:,} complete message(s) before it; the rest is missing (was the "
            "recorder killed, or the file cut short?)"
        )

    def _corrupt(self, offset: int, why: str) -> RecordingError:
        return RecordingError(f"{self.path}: corrupt record at byte {offset:,}: {why}")

    def entries(
        self, topics: Collection[str] | None = None, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> Iterator[RecordedEntry]:
        """Messages in file order, optionally only `topics` and log times in [start_ns, end_ns]."""
        self.entries_read, self.complete, self.compressions = 0, False, {}
        # Skipping a chunk by its time range would skip the channels declared inside it, so only
        # skip when the summary section has already told us every channel.
        skip_ok = (start_ns is not None or end_ns is not None) and self._summary_channels()
        with open(self.path, "rb") as f:
            f.seek(len(MCAP_MAGIC))
            offset = len(MCAP_MAGIC)
            while True:
                head = f.read(9)
                if len(head) < 9:
                    raise self._fail(
                        offset, "no end-of-data marker" if not head else "inside a record header"
                    )
                opcode, length = struct.unpack("<BQ", head)
                body = f.read(min(length, self.size - offset - 9))
                whole = len(body) == length
                if opcode == _OP_CHUNK:
                    yield from self._chunk(body, whole, offset, topics, start_ns, end_ns, skip_ok)
                elif not whole:
                    raise self._fail(offset, f"inside a {_RECORD_NAMES.get(opcode, 'unknown')} record")
                elif opcode == _OP_MESSAGE:
                    entry = self._message(body, offset, topics, start_ns, end_ns)
                    if entry is not None:
                        self.entries_read += 1
                        yield entry
                elif opcode in (_OP_DATA_END, _OP_FOOTER):
                    self.complete = True
                    return
                else:
                    self._other(opcode, body, offset)
                if not whole:
                    raise self._fail(offset, "inside a chunk")
                offset += 9 + length

    def messages(
        self, topics: Collection[str] | None = None, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> Iterator[tuple[RecordedEntry, Message]]:
        """Like `entries`, decoding each message with the wire codec."""
        for e in self.entries(topics, start_ns=start_ns, end_ns=end_ns):
            try:
                yield e, e.message(self.limits)
            except CodecError as exc:
                raise self._corrupt(e.offset, f"message on '{e.topic}': {exc}") from exc

    # ----- records -----
    def _other(self, opcode: int, body: bytes, offset: int) -> None:
        try:
            if opcode == _OP_CHANNEL:
                cid, _schema = struct.unpack_from("<HH", body)
                topic, pos = _string(body, 4)
                encoding, _ = _string(body, pos)
                self.channels[cid] = _Channel(topic, encoding)
            elif opcode == _OP_METADATA:
                name, pos = _string(body, 0)
                self.metadata[name] = _string_map(body, pos)
            elif opcode == _OP_HEADER:
                self.profile, pos = _string(body, 0)
                self.library, _ = _string(body, pos)
        except (struct.error, UnicodeDecodeError, ValueError) as exc:
            raise self._corrupt(offset, f"{_RECORD_NAMES[opcode]} record: {exc}") from exc

    def _message(
        self, body: bytes, offset: int, topics: Collection[str] | None, lo: int | None, hi: int | None
    ) -> RecordedEntry | None:
        if len(body) < _MSG_HEAD.size:
            raise self._corrupt(offset, f"message record of {len(body)} bytes")
        cid, seq, log_time, pub_time = _MSG_HEAD.unpack_from(body)
        ch = self.channels.get(cid)
        if ch is None:
            raise self._corrupt(offset, f"message on channel {cid}, which was never declared")
        if (
            (topics is not None and ch.topic not in topics)
            or (lo is not None and log_time < lo)
            or (hi is not None and log_time > hi)
        ):
            return None
        return RecordedEntry(ch.topic, log_time, pub_time, seq, body[_MSG_HEAD.size :], offset)

    def _summary_channels(self) -> bool:
        """Load every channel from the summary section; False when the file has no usable summary."""
        try:
            with open(self.path, "rb") as f:
                summary = SeekingReader(f).get_summary()
        except Exception:  # cut short or damaged: the caller reads every chunk instead
            return False
        if summary is None:
            return False
        for cid, ch in summary.channels.items():
            self.channels[cid] = _Channel(ch.topic, ch.message_encoding)
        return True

    def _chunk(
        self,
        body: bytes,
        whole: bool,
        offset: int,
        topics: Collection[str] | None,
        lo: int | None,
        hi: int | None,
        skip_ok: bool,
    ) -> Iterator[RecordedEntry]:
        try:
            t_first, t_last, usize, crc, clen = _CHUNK_HEAD.unpack_from(body)
            comp = body[_CHUNK_HEAD.size : _CHUNK_HEAD.size + clen].decode()
            (dlen,) = struct.unpack_from("<Q", body, _CHUNK_HEAD.size + clen)
        except (struct.error, UnicodeDecodeError):
            if whole:
                raise self._corrupt(offset, "chunk header") from None
            return  # cut inside the chunk header: nothing of it is readable
        self.compressions[comp or "none"] = self.compressions.get(comp or "none", 0) + 1
        data = body[_CHUNK_HEAD.size + clen + 8 : _CHUNK_HEAD.size + clen + 8 + dlen]
        if skip_ok and whole and ((lo is not None and t_last < lo) or (hi is not None and t_first > hi)):
            return  # every message of this chunk is outside the window: skip without decompressing
        records = self._decompress(comp, data, usize, whole and len(data) == dlen, offset)
        if whole and crc and zlib.crc32(records) != crc:
            raise self._corrupt(offset, "chunk checksum mismatch")
        pos = 0
        while pos + 9 <= len(records):
            opcode, length = struct.unpack_from("<BQ", records, pos)
            if pos + 9 + length > len(records):
                break
            rec = records[pos + 9 : pos + 9 + length]
            if opcode == _OP_MESSAGE:
                entry = self._message(rec, offset, topics, lo, hi)
                if entry is not None:
                    self.entries_read += 1
                    yield entry
            else:
                self._other(opcode, rec, offset)
            pos += 9 + length
        if whole and pos != len(records):
            raise self._corrupt(offset, "chunk ends inside a record")

    def _decompress(self, comp: str, data: bytes, usize: int, whole: bool, offset: int) -> bytes:
        """A chunk's records; for a cut-short chunk, as much as its readable part holds."""
        if usize > _MAX_CHUNK_BYTES:
            raise self._corrupt(offset, f"chunk claims {usize:,} uncompressed bytes")
        try:
            if comp == "zstd":
                if whole:
                    return zstandard.ZstdDecompressor().decompress(data, max_output_size=usize)
                return zstandard.ZstdDecompressor().decompressobj().decompress(data)
            if comp == "lz4":
                out = (
                    lz4.frame.decompress(data) if whole else lz4.frame.LZ4FrameDecompressor().decompress(data)
                )
                return bytes(out)
        except (zstandard.ZstdError, RuntimeError, ValueError) as exc:
            if whole:
                raise self._corrupt(offset, f"{comp} chunk does not decompress: {exc}") from exc
            return b""
        if comp == "":
            return data
        raise self._corrupt(
            offset, f"unsupported chunk compression '{comp}' (edgeloop reads zstd, lz4, none)"
        )


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    if pos + 4 + n > len(buf):
        raise ValueError("string overruns the record")
    return buf[pos + 4 : pos + 4 + n].decode(), pos + 4 + n


def _string_map(buf: bytes, pos: int) -> dict[str, str]:
    (n,) = struct.unpack_from("<I", buf, pos)
    end, pos = pos + 4 + n, pos + 4
    out = {}
    while pos < end:
        k, pos = _string(buf, pos)
        v, pos = _string(buf, pos)
        out[k] = v
    return out
