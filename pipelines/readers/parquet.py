"""Parquet files of documents: one row is one record, read a batch at a time.

The text column is option `text_field` (default "text"); `id_field` and `url_field` act as
in JSONL, and every other column goes into `meta`. A file that is not readable Parquet
is one `corrupt_parquet` quarantine row; a file without the text column one
`missing_column` row; a row group that fails mid-file quarantines the rest of the file
from the row where it broke (rows before it are kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.readers.base import FileTask
from pipelines.readers.jsonl import JsonlOptions, record_to_row

BATCH_ROWS = 1024
PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError)


def open_parquet(task: FileTask) -> tuple[pq.ParquetFile | None, dict[str, Any] | None]:
    """The open file, or a quarantine row saying why it cannot be read."""
    try:
        return pq.ParquetFile(task.path), None
    except PARQUET_ERRORS as exc:
        return None, task.quarantine(0, "corrupt_parquet", f"{type(exc).__name__}: {exc}")


def iter_rows(task: FileTask, pf: pq.ParquetFile) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(row index, row as a dict or None when reading broke, error text), a batch at a time."""
    index = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield index, row, ""
                index += 1
    except PARQUET_ERRORS as exc:
        yield index, None, f"{type(exc).__name__}: {exc}"


def read(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = JsonlOptions(**task.options)
    pf, problem = open_parquet(task)
    if pf is None:
        yield problem  # type: ignore[misc]
        return
    if opts.text_field not in pf.schema_arrow.names:
        yield task.quarantine(
            0, "missing_column", f"no column {opts.text_field!r}; columns: {pf.schema_arrow.names}"
        )
        return
    for index, row, error in iter_rows(task, pf):
        if row is None:
            yield task.quarantine(index, "corrupt_parquet", error)
            return
        yield record_to_row(task, opts, index, row, repr(row)[:400])
