"""Whole-file documents: plain HTML pages and plain text files (optionally .gz / .zst).

One file is one record. A file over max_doc_bytes is quarantined as `oversize` after
reading only max_doc_bytes + 1 bytes; a file that is not text at all (base.looks_binary)
as `binary_file`; a damaged .gz/.zst/.bz2/.xz file as `truncated_stream` (a whole-file record
has no complete part to keep). The charset is detected (BOM, strict UTF-8,
`<meta>` for HTML, charset-normalizer); more than 1% undecodable bytes quarantines the
file as `undecodable_text`, fewer are replaced and counted in meta. HTML goes through
the main-text extractor; a file with no text left is quarantined as `empty_text`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelines.ingest.html_text import DEFAULT_EXTRACTOR, Extractor, decode_bytes, extract_text
from pipelines.ingest.readers.base import SNIFF_BYTES, FileTask, garbled, looks_binary
from pipelines.ingest.readers.compressed import STREAM_ERRORS


class HtmlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extractor: Extractor = DEFAULT_EXTRACTOR


class TextOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _read_whole(task: FileTask, html: bool, extractor: Extractor) -> Iterator[dict[str, Any]]:
    try:
        with task.open() as stream:
            raw = stream.read(task.max_doc_bytes + 1)
    except STREAM_ERRORS as exc:
        yield task.quarantine(0, "truncated_stream", f"{type(exc).__name__}: {exc}")
        return
    if len(raw) > task.max_doc_bytes:
        yield task.quarantine(0, "oversize", raw)
        return
    if looks_binary(raw[:SNIFF_BYTES]):
        yield task.quarantine(0, "binary_file", raw)
        return
    decoded = decode_bytes(raw, html=html)
    if garbled(decoded):
        yield task.quarantine(0, "undecodable_text", raw)
        return
    text = extract_text(decoded.text, extractor) if html else decoded.text.strip()
    if not text:
        yield task.quarantine(0, "empty_text", raw)
        return
    meta: dict[str, Any] = {"encoding": decoded.encoding}
    if decoded.replaced:
        meta["replaced_chars"] = decoded.replaced
    yield task.document(0, text, content_type="text/html" if html else "text/plain", meta=meta)


def read_html(task: FileTask) -> Iterator[dict[str, Any]]:
    yield from _read_whole(task, True, HtmlOptions(**task.options).extractor)


def read_text(task: FileTask) -> Iterator[dict[str, Any]]:
    TextOptions(**task.options)
    yield from _read_whole(task, False, DEFAULT_EXTRACTOR)
