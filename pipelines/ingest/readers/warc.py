"""WARC, WET and ARC files (plain or gzip, per-record or whole-file) through warcio.

warcio was picked over fastwarc because it reads ARC and WARC/0.18 (ClueWeb09) files
and exposes how much of a record's declared length was actually present, which is how
truncation is detected; HTML extraction, not parsing, dominates the cost anyway.

Rules per record:
* Records that are valid but hold no document we want are skipped and counted per reason
  in one `skipped` row per file and reason (SKIP_REASONS; the run record and the report
  show the counts), never quarantined: warcinfo, request, metadata, revisit and
  continuation records; the crawler's own resources (`metadata://` URIs: wget's arguments
  and log); DNS records; robots.txt; responses outside 2xx; and media types that are not
  text: CSS, JavaScript, images, audio/video/fonts and any other (JSON, PDF ...).
* Other response, resource and conversion (WET) records each become a document or a
  quarantine row:
  - declared length over max_doc_bytes -> `oversize` (the body is streamed past, never held);
  - the body is decoded per its HTTP Content-Encoding (gzip, deflate, br, zstd) here, not by
    warcio (which fails on brotli), with at most max_doc_bytes + 1 bytes inflated: a larger
    decoded body is `oversize`;
  - HTML (text/html, application/xhtml+xml) -> charset detection + main-text extraction;
    text/plain and WET conversions -> charset detection only;
  - fewer body bytes than declared (a cut file) -> `truncated_record`;
  - nothing left after extraction -> `empty_text`;
  - more than 1% undecodable bytes -> `undecodable_text` (fewer: kept, count in meta).
* A whole-file gzip (not one gzip member per record) is re-read through a gzip stream,
  with offsets then counted in the decompressed stream (locator `file:gz+OFFSET`); .zst,
  .bz2 and .xz archives are read decompressed from the start (`file:z+OFFSET`), all under
  the compression-bomb guard of compressed.py.
* A parse error mid-file (garbage where a record header should be) keeps the records
  read so far and quarantines the rest as `malformed_warc` at the offset where it broke;
  so does a header line over MAX_HEADER_LINE bytes (warcio would grow it without bound,
  by repeated concatenation). Per-record gzip members are inflated by warcio a 16 KB block
  at a time (at most ~16 MB out per block); the file as a whole is held to the
  compression-bomb ratio of compressed.py like every other compressed input.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader, DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed

from pipelines.ingest.html_text import (
    DEFAULT_EXTRACTOR,
    Decoded,
    Extractor,
    decode_bytes,
    extract_text,
    header_charset,
)
from pipelines.ingest.readers.base import CHUNK, FileTask, garbled
from pipelines.ingest.readers.compressed import (
    STREAM_ERRORS,
    CompressionBomb,
    decode_body,
    inflate_limit,
    open_gzip,
)

CONTENT_TYPES = ("response", "resource", "conversion")
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain",)
NON_CHUNKED = "non-chunked gzip"
# Archives warcio cannot decompress itself: read through our decompressing stream.
DECOMPRESSED_SUFFIXES = (".zst", ".bz2", ".xz")
# Skip reasons of valid records we do not want (besides `warc_<record type>` for protocol records).
SKIP_REASONS = (
    "warc_crawler_metadata",
    "dns",
    "robots_txt",
    "http_3xx",
    "http_4xx",
    "http_5xx",
    "http_other",
    "content_css",
    "content_javascript",
    "content_image",
    "content_media",
    "content_other",
)
JAVASCRIPT_TYPES = (
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "text/javascript",
    "text/ecmascript",
    "application/json+javascript",
)
MEDIA_PREFIXES = ("audio/", "video/", "font/", "application/font", "application/x-font")
MAX_HEADER_LINE = 1 << 20


class _BoundedArchiveReader(DecompressingBufferedReader):
    """warcio's record reader with a bound on lines and on the bytes a file may inflate to."""

    def __init__(self, stream: Any, limit: int):
        super().__init__(stream)
        self._limit = limit

    def _process_read(self, data: bytes) -> None:
        super()._process_read(data)
        if self.num_read > self._limit:
            raise CompressionBomb(f"WARC inflated past {self._limit} bytes")

    def readline(self, length: int | None = None) -> bytes:
        """A line of at most `length` bytes, collected in parts (linear); a line longer than
        MAX_HEADER_LINE where no `length` allows it is an error, not a memory blow-up."""
        cap = MAX_HEADER_LINE + 1 if length is None else min(length, MAX_HEADER_LINE + 1)
        parts: list[bytes] = []
        size = 0
        while size < cap:
            self._fillbuff()
            if self.empty():
                break
            part = self.buff.readline(cap - size)
            parts.append(part)
            size += len(part)
            if part.endswith(b"\n"):
                break
        line = b"".join(parts)
        if size > MAX_HEADER_LINE and not line.endswith(b"\n"):
            raise ValueError(f"a header line over {MAX_HEADER_LINE} bytes")
        return line


def _archive(fh: Any, task: FileTask) -> ArchiveIterator:
    """warcio's iterator over `fh`, reading through _BoundedArchiveReader."""
    it = ArchiveIterator(fh, arc2warc=True)
    it.reader = _BoundedArchiveReader(it.fh, inflate_limit(task.file_size(), task.max_compression_ratio))
    return it


class WarcOptions(BaseModel):
    """`extractor`: HTML main-text extractor (trafilatura, measured best; resiliparse is faster)."""

    model_config = ConfigDict(extra="forbid")
    extractor: Extractor = DEFAULT_EXTRACTOR


def read(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = WarcOptions(**task.options)
    skipped: Counter[str] = Counter()
    done = 0
    decompressed = task.path.lower().endswith(DECOMPRESSED_SUFFIXES)
    try:
        with task.open() if decompressed else task.open_raw() as fh:
            prefix = "z+" if decompressed else ""
            for row in _records(task, opts, _archive(fh, task), skipped, prefix):
                done += 1
                yield row
    except ArchiveLoadFailed:
        # The file is one gzip stream: read it again decompressed, past the rows already emitted.
        skipped = Counter()
        with open_gzip(task.path, task.max_compression_ratio, task.size, task.settings) as fh:
            rows = _records(task, opts, _archive(fh, task), skipped, "gz+")
            for index, row in enumerate(rows):
                if index >= done:
                    yield row
    for reason, count in sorted(skipped.items()):
        yield task.skipped(reason, count)


def _records(
    task: FileTask, opts: WarcOptions, it: ArchiveIterator, skipped: Counter[str], prefix: str
) -> Iterator[dict[str, Any]]:
    """Rows for one pass over an archive; protocol records only bump `skipped`."""
    next_offset = 0
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # warcio prints recoverable warnings there
            records = iter(it)
            while (record := _next_record(records)) is not None:
                reason = _skip_reason(record)
                if reason is not None:
                    skipped[reason] += 1
                    next_offset = it.get_record_offset() + it.get_record_length()
                    continue
                row = _content_row(task, opts, it, record, prefix)
                next_offset = it.get_record_offset() + it.get_record_length()
                yield row
    except (ArchiveLoadFailed, ValueError) as exc:
        if NON_CHUNKED in str(exc):
            raise
        yield task.quarantine(
            f"{prefix}{next_offset}", "malformed_warc", f"{type(exc).__name__}: {exc}".strip()
        )
    except STREAM_ERRORS as exc:
        yield task.quarantine(f"{prefix}{next_offset}", "truncated_stream", f"{type(exc).__name__}: {exc}")


def _next_record(records: Iterator[Any]) -> Any:
    """warcio's next record, or None at the end. Its parser fails on some malformed headers with
    errors of its own code (AttributeError on a response without a target URI, ...): those become
    ValueError, a malformed record like warcio's other parse errors."""
    try:
        return next(records, None)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"unparseable record header ({type(exc).__name__}: {exc})") from exc


def _skip_reason(record: Any) -> str | None:
    """Why a valid record holds no document we want (SKIP_REASONS), None for a record to read."""
    if record.rec_type not in CONTENT_TYPES:
        return f"warc_{record.rec_type}"
    uri = (record.rec_headers.get_header("WARC-Target-URI") or "").strip()
    if uri.startswith("metadata://"):
        return "warc_crawler_metadata"
    if uri.lower().startswith("dns:"):
        return "dns"
    if record.rec_type == "conversion":
        return None
    if _url_path(uri) == "/robots.txt":
        return "robots_txt"
    status, mime, _ = _http_info(record)
    if status is not None and not 200 <= status < 300:
        return f"http_{status // 100}xx" if 300 <= status < 600 else "http_other"
    return None if mime in HTML_TYPES or mime in TEXT_TYPES else _media_reason(mime)


def _url_path(uri: str) -> str:
    """The path of a URL, lower-case, without query or fragment (no parsing that can raise)."""
    rest = uri.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path.split("?", 1)[0].split("#", 1)[0].lower()


def _media_reason(mime: str) -> str:
    """The skip reason of a media type that is not text we extract."""
    if mime == "text/css":
        return "content_css"
    if mime in JAVASCRIPT_TYPES:
        return "content_javascript"
    if mime.startswith("image/"):
        return "content_image"
    if mime.startswith(MEDIA_PREFIXES):
        return "content_media"
    return "content_other"


def _content_row(
    task: FileTask, opts: WarcOptions, it: ArchiveIterator, record: Any, prefix: str
) -> dict[str, Any]:
    uri = record.rec_headers.get_header("WARC-Target-URI")
    declared = int(record.rec_headers.get_header("Content-Length") or 0)
    if declared > task.max_doc_bytes:
        position = f"{prefix}{it.get_record_offset()}"  # reads the body to its end in blocks
        return task.quarantine(position, "oversize", f"{declared} bytes: {uri}")
    body = _decoded_body(record, task.max_doc_bytes)
    position = f"{prefix}{it.get_record_offset()}"  # warcio reads the record to its end here
    missing = getattr(record.raw_stream, "limit", 0)  # no LimitReader: no usable declared length
    if missing > 0:
        return task.quarantine(position, "truncated_record", f"{missing} bytes missing: {uri}")
    if len(body) > task.max_doc_bytes:
        return task.quarantine(position, "oversize", f"decoded body over {task.max_doc_bytes} bytes: {uri}")
    status, mime, charset = _http_info(record)
    if record.rec_type == "conversion" or mime in TEXT_TYPES:
        decoded = decode_bytes(body, charset)
        text = decoded.text.strip()
    else:
        decoded = decode_bytes(body, charset, html=True)
        text = extract_text(decoded.text, opts.extractor)
    if garbled(decoded):
        return task.quarantine(position, "undecodable_text", body)
    if not text:
        return task.quarantine(position, "empty_text", body)
    return task.document(
        position,
        text,
        uri=uri,
        content_type=mime or "text/plain",
        fetched_at=_warc_date(record.rec_headers.get_header("WARC-Date")),
        meta=_meta(record, status, decoded),
    )


def _decoded_body(record: Any, limit: int) -> bytes:
    """The record's payload, de-chunked and decoded per Content-Encoding, at most `limit` + 1 bytes
    (the raw payload is at most the declared length, which the caller checked against `limit`)."""
    if record.http_headers is None:
        return _read_up_to(record.raw_stream, limit + 1)
    body = record.raw_stream
    if (record.http_headers.get_header("Transfer-Encoding") or "").strip().lower() == "chunked":
        body = ChunkedDataReader(body)
    raw = _read_up_to(body, limit + 1)
    return decode_body(raw, record.http_headers.get_header("Content-Encoding") or "", limit)


def _read_up_to(stream: Any, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0 and (chunk := stream.read(min(size, CHUNK))):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _http_info(record: Any) -> tuple[int | None, str, str | None]:
    """(HTTP status or None, lower-case media type, declared charset) of a content record."""
    if record.http_headers is not None and record.rec_type == "response":
        content_type = record.http_headers.get_header("Content-Type") or ""
        status_text = (record.http_headers.get_statuscode() or "").strip()
        status = int(status_text) if status_text.isdigit() else None
    else:
        content_type = record.rec_headers.get_header("Content-Type") or ""
        status = None
    mime = content_type.split(";")[0].strip().lower()
    if mime == "application/http" or (not mime and record.rec_type == "response"):
        mime = "text/html"  # an ARC/odd record without HTTP headers: treat the body as a page
    return status, mime, header_charset(content_type)


def _warc_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _meta(record: Any, status: int | None, decoded: Decoded) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "warc_record_id": record.rec_headers.get_header("WARC-Record-ID"),
        "warc_type": record.rec_type,
        "encoding": decoded.encoding,
    }
    if status is not None:
        meta["http_status"] = status
    if decoded.replaced:
        meta["replaced_chars"] = decoded.replaced
    return meta
