"""Parquet files of documents: one row is one record, read a batch at a time.

The text column is option `text_field` (default "text"); `id_field` and `url_field` act as
in JSONL, and every other column goes into `meta`. A file that is not readable Parquet
is one `corrupt_parquet` quarantine row; a file without the text column one
`missing_column` row; a row group that fails mid-file quarantines the rest of the file
from the row where it broke (rows before it are kept).

Parquet is compressed like any other input, and its dictionary encoding multiplies on top:
a row is an index into the dictionary, so one 1 MB value named by a million rows decodes to
1 TB from a file of about 1 MB. The compression-bomb policy of compressed.py applies to both:
a file whose metadata declares more uncompressed bytes than `inflate_limit` allows is one
`compression_bomb` row before anything is decoded; and string columns are read as
dictionaries (`read_dictionary`) and each row's value measured in the dictionary first. A batch
that decodes to at most BATCH_DECODE_BYTES is decoded at once (the ordinary case, and fast); a
larger one row by row, so memory stays at a batch of indices, the dictionaries and one row
whatever the amplification. Once the rows' decoded bytes (every column) pass the limit, the rest
of the file is one `compression_bomb` row (rows before it kept); a text value over max_doc_bytes
is `oversize` without being decoded whole. Reading as dictionaries costs time where a text column
or page is plain (Arrow hashes the values back into a dictionary): about 3x on a reader-only
measure of unique text, the price of a bound that a crafted footer cannot lift.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.ingest.readers.base import EXCERPT_CHARS, FileTask
from pipelines.ingest.readers.compressed import inflate_limit
from pipelines.ingest.readers.jsonl import JsonlOptions, record_to_row

BATCH_ROWS = 1024
# A batch whose string columns decode to at most this many bytes is decoded at once.
BATCH_DECODE_BYTES = 32 << 20
PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError)


def open_parquet(task: FileTask) -> tuple[pq.ParquetFile | None, dict[str, Any] | None]:
    """The open file, or a quarantine row saying why it cannot be read."""
    try:
        return pq.ParquetFile(task.open_random()), None
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


def with_dictionaries(pf: pq.ParquetFile, task: FileTask) -> pq.ParquetFile:
    """The same file with its string and binary columns read as dictionaries (metadata reused).
    All of them, not only those whose footer names a dictionary page: Arrow finds dictionary pages
    by their page headers, so a footer that hides one would otherwise bring the amplification back."""
    strings = [f.name for f in pf.schema_arrow if _is_string(f.type)]
    return pq.ParquetFile(task.open_random(), metadata=pf.metadata, read_dictionary=strings)


def _is_string(kind: pa.DataType) -> bool:
    return any(
        test(kind)
        for test in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_binary,
            pa.types.is_large_binary,
        )
    )


def declared_size(pf: pq.ParquetFile) -> int:
    """Uncompressed bytes of every column chunk, as the file's metadata declares them."""
    meta = pf.metadata
    return sum(
        meta.row_group(g).column(c).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    )


class _Batch:
    """One record batch, its rows handed out one at a time: dictionary columns are measured per
    row (the dictionary's value lengths taken by index) and a value is decoded only when asked."""

    def __init__(self, batch: pa.RecordBatch):
        self.names = batch.schema.names
        self.columns = batch.columns
        dictionaries = {
            name: col
            for name, col in zip(self.names, self.columns, strict=True)
            if isinstance(col, pa.DictionaryArray)
        }
        self.plain_bytes = sum(
            col.nbytes for name, col in zip(self.names, self.columns, strict=True) if name not in dictionaries
        )
        self.lengths = {
            name: pc.fill_null(pc.take(pc.binary_length(col.dictionary), col.indices), 0).to_pylist()
            for name, col in dictionaries.items()
        }
        # An ordinary batch is decoded column by column (fast); only an amplified one row by row.
        whole = sum(sum(lengths) for lengths in self.lengths.values()) <= BATCH_DECODE_BYTES
        self.plain = {
            name: col.to_pylist()
            for name, col in zip(self.names, self.columns, strict=True)
            if whole or name not in dictionaries
        }

    def row_bytes(self, i: int) -> int:
        """Decoded bytes of row `i`'s dictionary columns."""
        return sum(lengths[i] for lengths in self.lengths.values())

    def value_bytes(self, name: str, i: int) -> int:
        """Bytes of one dictionary column's value in row `i` (0 for other columns)."""
        return self.lengths[name][i] if name in self.lengths else 0

    def value(self, name: str, i: int) -> Any:
        if name in self.plain:
            return self.plain[name][i]
        return self.columns[self.names.index(name)][i].as_py()

    def row(self, i: int) -> dict[str, Any]:
        return {name: self.value(name, i) for name in self.names}

    def excerpt(self, name: str, i: int) -> str:
        """The start of a value too large to decode: a few bytes sliced out of the dictionary."""
        col = self.columns[self.names.index(name)]
        value = col.dictionary[col.indices[i].as_py()]
        head = value.as_buffer()[: EXCERPT_CHARS * 4].to_pybytes()
        return head.decode("utf-8", "replace")[:EXCERPT_CHARS]


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
    limit = inflate_limit(task.file_size(), task.max_compression_ratio)
    declared = declared_size(pf)
    if declared > limit:
        yield task.quarantine(
            0,
            "compression_bomb",
            f"metadata declares {declared} uncompressed bytes, over the limit of {limit}",
        )
        return
    try:
        pf = with_dictionaries(pf, task)
    except PARQUET_ERRORS as exc:
        yield task.quarantine(0, "corrupt_parquet", f"{type(exc).__name__}: {exc}")
        return
    yield from _read_rows(task, opts, pf, limit)


def _read_rows(
    task: FileTask, opts: JsonlOptions, pf: pq.ParquetFile, limit: int
) -> Iterator[dict[str, Any]]:
    """Every row as a document or quarantine row, stopping at a broken row group or at the bomb limit."""
    index = decoded = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            rows = _Batch(batch)
            decoded += rows.plain_bytes
            for i in range(batch.num_rows):
                decoded += rows.row_bytes(i)
                if decoded > limit:
                    yield task.quarantine(
                        index,
                        "compression_bomb",
                        f"decoded past {limit} bytes at row {index} of {pf.metadata.num_rows}",
                    )
                    return
                yield _row(task, opts, rows, i, index)
                index += 1
    except PARQUET_ERRORS as exc:
        yield task.quarantine(index, "corrupt_parquet", f"{type(exc).__name__}: {exc}")


def _row(task: FileTask, opts: JsonlOptions, rows: _Batch, i: int, index: int) -> dict[str, Any]:
    """Row `i` of the batch, its text checked against max_doc_bytes before it is decoded."""
    if rows.value_bytes(opts.text_field, i) > task.max_doc_bytes:
        return task.quarantine(index, "oversize", rows.excerpt(opts.text_field, i))
    row = rows.row(i)
    return record_to_row(task, opts, index, row, repr(row)[:400])
