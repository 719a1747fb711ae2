"""What every reader shares: the file task, the output rows, stable ids and bounded line reading.

A reader is a function `read(task) -> Iterator[dict]` over ONE file. Every record it
meets becomes exactly one row: a document, an image, or a quarantine row (source,
locator, reason, excerpt). Valid records we do not want (WARC protocol records, DNS,
CSS, non-2xx responses ...) are counted in one `skipped` row per file and reason, and
quarantine records past a file's cap in `folded` rows (readers.read_file); both carry a
count, not a record. So for every file: records read = documents + images + quarantine
rows - `quarantine_capped` rows + folded + skipped.

Rows are plain dicts keyed by the columns of `RECORD_SCHEMA` (pipelines/ingest/readers/schema.py);
`kind` says which output table a row belongs to.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import xxhash

from pipelines.framework.storage_settings import StorageSettings
from pipelines.framework.terminal_text import path_for_display
from pipelines.framework.unicode_text import arrow_text, has_lone_surrogates
from pipelines.ingest.html_text import Decoded
from pipelines.ingest.readers.compressed import BUFFER, DEFAULT_MAX_COMPRESSION_RATIO, open_maybe_compressed
from pipelines.ingest.readers.source import input_size, is_remote, open_input, open_random_access, shown_url

EXCERPT_CHARS = 200
DEFAULT_MAX_DOC_BYTES = 10_000_000
CHUNK = BUFFER
# Text with more undecodable bytes than this (as U+FFFD) is quarantined, not kept.
MAX_REPLACED_FRACTION = 0.01
# A text-format file whose first SNIFF_BYTES hold a NUL byte, or more than BINARY_FRACTION of
# characters that are undecodable or control codes, is one `binary_file` row, not a row per "line".
SNIFF_BYTES = 8192
BINARY_FRACTION = 0.3
_TEXT_CONTROLS = "\t\n\r\f\v\x1b"

DOCUMENT, IMAGE, QUARANTINE, SKIPPED = "document", "image", "quarantine", "skipped"
# Records past a file's quarantine cap: counted per reason like SKIPPED, not written as rows.
FOLDED = "folded"


@dataclass(frozen=True)
class FileTask:
    """One file to read: where it is, how to name it in ids and locators, and with which options."""

    source: str
    path: str
    relpath: str
    format: str
    options: dict[str, Any] = field(default_factory=dict)
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO
    # Bytes, when the driver's listing knows them (readers.read_file looks them up otherwise).
    size: int | None = None
    # How to reach a remote `path` (the job's `storage:` block); None: the process default.
    settings: StorageSettings | None = None

    @property
    def root(self) -> str:
        """The input root the file was listed under (relpath is relative to it)."""
        return self.path[: len(self.path) - len(self.relpath)].rstrip("/") or "/"

    @property
    def remote(self) -> bool:
        return is_remote(self.path)

    def open(self) -> io.BufferedReader:
        """The file's content, decompressed by suffix under this task's compression-bomb guard."""
        return open_maybe_compressed(self.path, self.max_compression_ratio, self.size, self.settings)

    def open_raw(self) -> IO[bytes]:
        """The file's bytes as stored (remote files resume after a dropped connection)."""
        return open_input(self.path, self.settings, self.size)

    def open_random(self) -> Any:
        """What pyarrow opens a Parquet file from: the local path, or a seekable remote file."""
        return open_random_access(self.path, self.settings)

    def file_size(self) -> int:
        """The file's size: listed, or looked up (0 for a web file whose server does not say)."""
        return self.size if self.size is not None else input_size(self.path, self.settings) or 0

    @property
    def shown_relpath(self) -> str:
        """The relative path as stored in locators and uris: the name itself when it is printable
        UTF-8 (nearly always), else with the odd bytes and controls as `\\xNN` escapes. A name that
        is not UTF-8 cannot be an Arrow string as it is; the exact bytes go into `meta.path_hex`."""
        return path_for_display(self.relpath)

    @property
    def path_is_odd(self) -> bool:
        """Whether the displayed name differs from the real one (not UTF-8, or control codes)."""
        return self.shown_relpath != self.relpath

    def locator(self, position: str | int) -> str:
        """`relpath:position`: a byte offset, a line number or a row index inside the file. A remote
        file is named by its URL (no credentials, no query string), which says where to fetch it."""
        name = path_for_display(shown_url(self.path)) if self.remote else self.shown_relpath
        return f"{name}:{position}"

    def record_id(self, position: str | int) -> str:
        """Stable across reruns: a hash of source, path relative to the input root and position.
        Surrogates (undecodable bytes of a name, JSON `\\ud800` ids) are hashed as they are, so
        names that differ only in such bytes get different ids."""
        key = f"{self.source}\x00{self.relpath}\x00{position}".encode("utf-8", "surrogatepass")
        return xxhash.xxh3_128_hexdigest(key)

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
        meta = dict(meta or {})
        if self.path_is_odd:
            meta["path_hex"] = os.fsencode(self.relpath).hex()
        return {
            "kind": DOCUMENT,
            "id": self.record_id(position),
            "source": self.source,
            "uri": arrow_text(uri) if uri else self.shown_relpath,
            "locator": self.locator(position),
            "text": text,
            "content_type": arrow_text(content_type),
            "fetched_at": fetched_at,
            "meta": meta_json(meta),
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

    def folded(self, reason: str, count: int) -> dict[str, Any]:
        """`count` quarantine records of `reason` past the file's cap (see readers.read_file)."""
        return {**self.skipped(reason, count), "kind": FOLDED}

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
    return arrow_text(raw[:EXCERPT_CHARS])


def meta_json(meta: dict[str, Any]) -> str:
    """`meta` as JSON text; values with lone surrogates are kept as JSON `\\u` escapes (lossless)."""
    text = json.dumps(meta, ensure_ascii=False, default=str)
    return json.dumps(meta, default=str) if has_lone_surrogates(text) else text


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a text-format file are not text: a NUL byte (UTF-16/32 text,
    which has them, starts with a byte-order mark) or mostly undecodable bytes and controls."""
    if not head or head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return False
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", errors="replace")
    odd = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in _TEXT_CONTROLS))
    return odd > BINARY_FRACTION * len(text)


def garbled(decoded: Decoded) -> bool:
    """Whether decoding had to replace too much of the input for the text to be worth keeping."""
    return decoded.replaced > MAX_REPLACED_FRACTION * max(len(decoded.text), 1)


def read_bounded_lines(stream: io.BufferedReader, limit: int) -> Iterator[tuple[int, bytes | None, bytes]]:
    """Yield (line number, line or None when over `limit` bytes, first bytes of the line).

    An oversize line is skipped in chunks, so memory stays at `limit` + CHUNK and time linear
    however long the line is (a compressed stream also stops at its bomb limit). Line numbers start at 1; trailing newlines are stripped.
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
