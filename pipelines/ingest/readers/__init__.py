"""Readers: one small module per input format, each turning ONE file into rows.

`read_file` is the single entry point the ingest stage calls inside Spark tasks. It
picks the reader for the task's format and guarantees the bad-input contract: a
zero-byte file becomes one `empty_file` quarantine row, a file that cannot be opened
`unreadable_file`, a compressed file that inflates past its ratio limit
`compression_bomb` (the rows before it kept, the rest never inflated), a remote file whose
reads still fail after their retries (readers/source.py) `read_failed` at the byte offset it
stopped at (the rows before it kept), and any error a
reader did not foresee `reader_error` (with the exception text) after the rows already
produced, so a run never dies on one file.

A file gets at most MAX_QUARANTINE_ROWS quarantine rows: a quarantine that floods is one
nobody reads. Past the cap its quarantine records are counted per reason (`folded` rows,
which are counts, not table rows) and one `quarantine_capped` row says how many were
left out; so records met = documents + images + quarantine rows - capped rows + folded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from pipelines.ingest.readers import images, jsonl, pages, parquet, warc
from pipelines.ingest.readers.base import QUARANTINE, FileTask
from pipelines.ingest.readers.compressed import COMPRESSED_SUFFIXES, CompressionBomb
from pipelines.ingest.readers.source import InputReadError, describe

Reader = Callable[[FileTask], Iterator[dict[str, Any]]]
MAX_QUARANTINE_ROWS = 100
CAPPED = "quarantine_capped"

READERS: dict[str, Reader] = {
    "jsonl": jsonl.read,
    "parquet": parquet.read,
    "warc": warc.read,
    "html": pages.read_html,
    "text": pages.read_text,
    "images": images.read_image_file,
    "image_parquet": images.read_image_parquet,
}

OPTIONS: dict[str, type[BaseModel]] = {
    "jsonl": jsonl.JsonlOptions,
    "parquet": jsonl.JsonlOptions,
    "warc": warc.WarcOptions,
    "html": pages.HtmlOptions,
    "text": pages.TextOptions,
    "images": images.ImageOptions,
    "image_parquet": images.ImageParquetOptions,
}

# Suffixes checked after stripping a trailing compression suffix (longest first).
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".warc.wet", "warc"),
    (".warc.wat", "warc"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".json", "jsonl"),
    (".parquet", "parquet"),
    (".warc", "warc"),
    (".arc", "warc"),
    (".wet", "warc"),
    (".wat", "warc"),
    (".html", "html"),
    (".htm", "html"),
    (".xhtml", "html"),
    (".txt", "text"),
    (".md", "text"),
    *((ext, "images") for ext in images.IMAGE_EXTENSIONS),
)


def detect_format(path: str) -> str | None:
    """The format a file name implies (compression suffixes looked through), or None."""
    name = path.lower()
    for compressed in COMPRESSED_SUFFIXES:
        if name.endswith(compressed):
            name = name[: -len(compressed)]
            break
    return next((fmt for suffix, fmt in _SUFFIXES if name.endswith(suffix)), None)


def read_file(task: FileTask) -> Iterator[dict[str, Any]]:
    """Every row of one file; never raises for anything the file contains."""
    reader = READERS.get(task.format)
    if reader is None:
        yield task.quarantine(0, "unsupported_format", f"no reader for format {task.format!r}")
        return
    try:
        task = replace(task, size=task.file_size())
    except (OSError, InputReadError) as exc:
        yield task.quarantine(0, "unreadable_file", describe(exc))
        return
    if task.size == 0:
        yield task.quarantine(0, "empty_file", "")
        return
    yield from _capped(task, _guarded(task, reader))


def _guarded(task: FileTask, reader: Reader) -> Iterator[dict[str, Any]]:
    """The reader's rows, then one row for whatever stopped it early."""
    produced = 0
    try:
        for row in reader(task):
            produced += 1
            yield row
    except CompressionBomb as exc:
        yield task.quarantine(f"after-{produced}", "compression_bomb", str(exc))
    except InputReadError as exc:
        yield task.quarantine(exc.offset, "read_failed", f"after {produced} records: {exc}")
    except Exception as exc:  # noqa: BLE001 - the contract is: one bad file never stops a run
        yield task.quarantine(f"after-{produced}", "reader_error", f"{type(exc).__name__}: {exc}")


def _capped(task: FileTask, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The first MAX_QUARANTINE_ROWS quarantine rows of a file as they come; the rest counted."""
    written = 0
    left_out: Counter[str] = Counter()
    for row in rows:
        if row["kind"] != QUARANTINE:
            yield row
        elif written < MAX_QUARANTINE_ROWS:
            written += 1
            yield row
        else:
            left_out[row["reason"]] += 1
    if left_out:
        summary = ", ".join(f"{reason}={n}" for reason, n in sorted(left_out.items()))
        yield task.quarantine(
            f"after-{MAX_QUARANTINE_ROWS}", CAPPED, f"{left_out.total()} more not written: {summary}"
        )
        for reason, n in sorted(left_out.items()):
            yield task.folded(reason, n)
