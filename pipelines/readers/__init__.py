"""Readers: one small module per input format, each turning ONE file into rows.

`read_file` is the single entry point the ingest stage calls inside Spark tasks. It
picks the reader for the task's format and guarantees the bad-input contract: a
zero-byte file becomes one `empty_file` quarantine row, a file that cannot be opened
`unreadable_file`, and any error a reader did not foresee `reader_error` (with the
exception text) after the rows already produced, so a run never dies on one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from pipelines.readers import images, jsonl, pages, parquet, warc
from pipelines.readers.base import FileTask

Reader = Callable[[FileTask], Iterator[dict[str, Any]]]

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

# Suffixes checked after stripping a trailing .gz / .zst (longest first).
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
    for compressed in (".gz", ".zst"):
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
        if os.path.getsize(task.path) == 0:
            yield task.quarantine(0, "empty_file", "")
            return
    except OSError as exc:
        yield task.quarantine(0, "unreadable_file", f"{type(exc).__name__}: {exc}")
        return
    produced = 0
    try:
        for row in reader(task):
            produced += 1
            yield row
    except Exception as exc:  # noqa: BLE001 - the contract is: one bad file never stops a run
        yield task.quarantine(f"after-{produced}", "reader_error", f"{type(exc).__name__}: {exc}")
