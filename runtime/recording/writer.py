"""RecordingWriter: messages to an MCAP file, one channel per topic, chunked and compressed."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from mcap.writer import CompressionType, Writer

from ..errors import RecordingError
from ..message import Message
from .layout import (
    GRAPH_METADATA,
    MESSAGE_ENCODING,
    PROFILE,
    SCHEMA_ENCODING,
    SCHEMA_NAME,
    SCHEMA_TEXT,
    STATS_METADATA,
    edgeloop_version,
    encode_message,
)

__all__ = ["COMPRESSIONS", "RecordingWriter"]

COMPRESSIONS = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}


class RecordingWriter:
    """Writes messages to an MCAP file: one channel per topic, chunked and compressed (zstd by default).

    Example::

        with RecordingWriter("run.mcap", metadata={"name": "demo"}) as w:
            w.write(msg)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        compression: str = "zstd",
        chunk_bytes: int = 1 << 20,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise RecordingError(f"compression '{compression}' is not one of {', '.join(COMPRESSIONS)}")
        self.path = str(path)
        try:
            self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise RecordingError(f"{path}: cannot write the recording: {exc.strerror}") from exc
        self._writer = Writer(self._file, chunk_size=chunk_bytes, compression=COMPRESSIONS[compression])
        self._writer.start(profile=PROFILE, library=f"edgeloop {edgeloop_version()}")
        self._schema = self._writer.register_schema(SCHEMA_NAME, SCHEMA_ENCODING, SCHEMA_TEXT.encode())
        if metadata:
            self._writer.add_metadata(GRAPH_METADATA, metadata)
        self.channels: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    def add_topic(self, topic: str) -> int:
        """Register a channel (done on first use too; register up front so empty topics are listed)."""
        if topic not in self.channels:
            node, _, port = topic.partition("/")
            self.channels[topic] = self._writer.register_channel(
                topic, MESSAGE_ENCODING, self._schema, {"node": node, "output": port}
            )
            self.counts[topic] = 0
        return self.channels[topic]

    def write(self, msg: Message) -> None:
        self.write_data(msg.topic, msg.seq, msg.t_sense_ns, msg.t_emit_ns, encode_message(msg))

    def write_data(self, topic: str, seq: int, t_sense_ns: int, t_emit_ns: int, data: bytes) -> None:
        """Write an already encoded message (MCAP times are unsigned: negative times are stored as 0)."""
        cid = self.channels.get(topic) or self.add_topic(topic)
        self._writer.add_message(
            cid,
            log_time=max(0, t_emit_ns),
            data=data,
            publish_time=max(0, t_sense_ns),
            sequence=seq & 0xFFFFFFFF,
        )
        self.counts[topic] += 1

    def flush(self) -> None:
        """Close the open chunk and hand it to the OS, so a crash loses only what came after."""
        self._writer.flush()  # type: ignore[no-untyped-call]

    def close(self, stats: dict[str, str] | None = None) -> None:
        """Write the summary (channels, statistics, indexes) and close the file."""
        if self.closed:
            return
        self.closed = True
        try:
            if stats:
                self._writer.add_metadata(STATS_METADATA, stats)
            self._writer.finish()  # type: ignore[no-untyped-call]
        finally:
            self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
