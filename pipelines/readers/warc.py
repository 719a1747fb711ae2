"""WARC, WET and ARC files (plain or gzip, per-record or whole-file) through warcio.

warcio was picked over fastwarc because it reads ARC and WARC/0.18 (ClueWeb09) files
and exposes how much of a record's declared length was actually present, which is how
truncation is detected; HTML extraction, not parsing, dominates the cost anyway.

Rules per record:
* warcinfo, request, metadata, revisit and continuation records hold no document, nor
  do resource records of the crawler itself (`metadata://` URIs: wget's arguments and
  log): they are counted per type in one `skipped` row per file.
* response, resource and conversion (WET) records are content records; each becomes a
  document or a quarantine row:
  - declared length over max_doc_bytes -> `oversize` (the body is streamed past, never held);
  - HTTP status outside 2xx -> `http_status`;
  - HTML (text/html, application/xhtml+xml) -> charset detection + main-text extraction;
    text/plain and WET conversions -> charset detection only;
    any other media type -> `unsupported_content_type` (visible, not silently dropped);
  - fewer body bytes than declared (a cut file) -> `truncated_record`;
  - nothing left after extraction -> `empty_text`;
  - more than 1% undecodable bytes -> `undecodable_text` (fewer: kept, count in meta).
* A whole-file gzip (not one gzip member per record) is re-read through a gzip stream,
  with offsets then counted in the decompressed stream (locator `file:gz+OFFSET`).
* A parse error mid-file (garbage where a record header should be) keeps the records
  read so far and quarantines the rest as `malformed_warc` at the offset where it broke.
"""

from __future__ import annotations

import contextlib
import gzip
import io
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from pipelines.html_text import (
    DEFAULT_EXTRACTOR,
    Decoded,
    Extractor,
    decode_bytes,
    extract_text,
    header_charset,
)
from pipelines.readers.base import CHUNK, STREAM_ERRORS, FileTask, garbled

CONTENT_TYPES = ("response", "resource", "conversion")
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain",)
NON_CHUNKED = "non-chunked gzip"


class WarcOptions(BaseModel):
    """`extractor`: HTML main-text extractor (trafilatura, measured best; resiliparse is faster)."""

    model_config = ConfigDict(extra="forbid")
    extractor: Extractor = DEFAULT_EXTRACTOR


def read(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = WarcOptions(**task.options)
    skipped: Counter[str] = Counter()
    done = 0
    try:
        with open(task.path, "rb") as fh:
            for row in _records(task, opts, ArchiveIterator(fh, arc2warc=True), skipped, ""):
                done += 1
                yield row
    except ArchiveLoadFailed:
        # The file is one gzip stream: read it again decompressed, past the rows already emitted.
        skipped = Counter()
        with gzip.open(task.path, "rb") as fh:
            rows = _records(
                task, opts, ArchiveIterator(io.BufferedReader(fh, CHUNK), arc2warc=True), skipped, "gz+"
            )
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
            for record in it:
                kind = _record_kind(record)
                if kind is not None:
                    skipped[kind] += 1
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


def _record_kind(record: Any) -> str | None:
    """The skip reason of a record that holds no document, None for a content record."""
    if record.rec_type not in CONTENT_TYPES:
        return f"warc_{record.rec_type}"
    if (record.rec_headers.get_header("WARC-Target-URI") or "").startswith("metadata://"):
        return "warc_crawler_metadata"
    return None


def _content_row(
    task: FileTask, opts: WarcOptions, it: ArchiveIterator, record: Any, prefix: str
) -> dict[str, Any]:
    uri = record.rec_headers.get_header("WARC-Target-URI")
    declared = int(record.rec_headers.get_header("Content-Length") or 0)
    if declared > task.max_doc_bytes:
        position = f"{prefix}{it.get_record_offset()}"  # reads the body to its end in blocks
        return task.quarantine(position, "oversize", f"{declared} bytes: {uri}")
    body = record.content_stream().read()
    position = f"{prefix}{it.get_record_offset()}"
    if record.raw_stream.limit > 0:
        return task.quarantine(
            position, "truncated_record", f"{record.raw_stream.limit} bytes missing: {uri}"
        )
    status, mime, charset = _http_info(record)
    if status is not None and not 200 <= status < 300:
        return task.quarantine(position, "http_status", f"{status}: {uri}")
    if record.rec_type == "conversion" or mime in TEXT_TYPES:
        decoded = decode_bytes(body, charset)
        text = decoded.text.strip()
    elif mime in HTML_TYPES:
        decoded = decode_bytes(body, charset, html=True)
        text = extract_text(decoded.text, opts.extractor)
    else:
        return task.quarantine(position, "unsupported_content_type", f"{mime or 'unknown'}: {uri}")
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
