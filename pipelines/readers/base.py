"""What every reader shares: the file task, the output rows, stable ids and bounded line reading.

A reader is a function `read(task) -> Iterator[dict]` over ONE file. Every record it
meets becomes exactly one row: a document, an image, or a quarantine row (source,
locator, reason, excerpt). Records that carry no content by definition (WARC request,
warcinfo, metadata, revisit records) are counted in one `skipped` row per file and
reason. So for every file, content records in = documents + images + quarantine.

Rows are plain dicts keyed by the columns of `RECORD_SCHEMA` (pipelines/readers/schema.py);
`kind` says which output table a row belongs to.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import xxhash

from pipelines.html_text import Decoded

EXCERPT_CHARS = 200
DEFAULT_MAX_DOC_BYTES = 10_000_000
CHUNK = 1 << 20
# Text with more undecodable bytes than this (as U+FFFD) is quarantined, not kept.
MAX_REPLACED_FRACTION = 0.01

DOCUMENT, IMAGE, QUARANTINE, SKIPPED = "document", "image", "quarantine", "skipped"

# Errors a damaged compressed stream raises while being read.
STREAM_ERRORS = (EOFError, OSError, zlib.error)


@dataclass(frozen=True)
class FileTask:
    """One file to read: where it is, how to name it in ids and locators, and with which options."""

    source: str
    path: str
    relpath: str
    format: str
    options: dict[str, Any] = field(default_factory=dict)
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES

    @property
    def root(self) -> str:
        """The input root the file was listed under (relpath is relative to it)."""
        return self.path[: len(self.path) - len(self.relpath)].rstrip("/") or "/"

    def locator(self, position: str | int) -> str:
        """`relpath:position`: a byte offset, a line number or a row index inside the file."""
        return f"{self.relpath}:{position}"

    def record_id(self, position: str | int) -> str:
        """Stable across reruns: a hash of source, path relative to the input root and position."""
        return xxhash.xxh3_128_hexdigest(f"{self.source}\x00{self.relpath}\x00{position}".encode())

    def document(
        self,
        position: str | int,
        text: str,
        *,
        uri: str | None = None,
        content_type: str = "text/plain",
        fetched_at: datetime | None = None,
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": DOCUMENT,
            "id": self.record_id(position),
            "source": self.source,
            "uri": uri or self.relpath,
            "locator": self.locator(position),
            "text": text,
            "content_type": content_type,
            "fetched_at": fetched_at,
            "meta": json.dumps(meta or {}, ensure_ascii=False, default=str),
        }

    def quarantine(
        self, position: str | int, reason: str, excerpt: bytes | str | None = ""
    ) -> dict[str, Any]:
        return {
            "kind": QUARANTINE,
            "source": self.source,
            "locator": self.locator(position),
            "reason": reason,
            "excerpt": excerpt_of(excerpt),
        }

    def skipped(self, reason: str, count: int) -> dict[str, Any]:
        return {
            "kind": SKIPPED,
            "source": self.source,
            "locator": self.locator(0),
            "reason": reason,
            "meta": json.dumps({"count": count}),
        }


def excerpt_of(raw: bytes | str | None) -> str:
    """At most EXCERPT_CHARS characters of raw input, for a human to recognise the record."""
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        raw = raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return raw[:EXCERPT_CHARS]


def garbled(decoded: Decoded) -> bool:
    """Whether decoding had to replace too much of the input for the text to be worth keeping."""
    return decoded.replaced > MAX_REPLACED_FRACTION * max(len(decoded.text), 1)


class TolerantGzip(io.RawIOBase):
    """A (multi-member) gzip stream that hands out every byte decompressed before damage.

    `gzip.GzipFile` drops the output of the read that hits a truncated end; here all
    of it is delivered first and EOFError is raised only on the next read, so the
    lines before a cut are kept and the cut itself is reported.
    """

    def __init__(self, path: str):
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._inflate = zlib.decompressobj(31)
        self._fresh = True
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            raw = self._fh.read(CHUNK)
            if not raw:
                if self._inflate.eof or self._fresh:
                    return 0
                raise EOFError("compressed stream ends before its end-of-stream marker (truncated gzip)")
            self._feed(raw)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _feed(self, raw: bytes) -> None:
        while raw:
            if self._inflate.eof:
                self._inflate, self._fresh = zlib.decompressobj(31), True
            self._pending += self._inflate.decompress(raw)
            self._fresh = False
            raw = self._inflate.unused_data if self._inflate.eof else b""

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_maybe_compressed(path: str) -> io.BufferedReader:
    """A buffered binary stream of the file's content, decompressing .gz and .zst by name."""
    if path.endswith(".gz"):
        return io.BufferedReader(TolerantGzip(path), CHUNK)
    if path.endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)  # noqa: SIM115 - closed with the reader
        return io.BufferedReader(raw, CHUNK)  # type: ignore[arg-type]
    return open(path, "rb", buffering=CHUNK)


def read_bounded_lines(stream: io.BufferedReader, limit: int) -> Iterator[tuple[int, bytes | None, bytes]]:
    """Yield (line number, line or None when over `limit` bytes, first bytes of the line).

    An oversize line is skipped in chunks, so memory stays at `limit` + CHUNK however
    long the line is. Line numbers start at 1; trailing newlines are stripped.
    """
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            head = line[: EXCERPT_CHARS * 4]
            while line and not line.endswith(b"\n"):
                line = stream.readline(CHUNK)
            yield number, None, head
            continue
        line = line.rstrip(b"\r\n")
        yield number, line, line
