"""The one Arrow schema every reader row fits, the three tables' schemas, and batching.

Documents, images, quarantine and skipped rows share one schema (`kind` tells them
apart) so that one Spark scan of the input files yields everything; each task then
splits its rows into the three tables' files (pipelines/ingest/writer.py) without
reading the input again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any

import pyarrow as pa

RECORD_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("text", pa.string()),
        ("content_type", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("meta", pa.string()),
        ("bytes", pa.binary()),
        ("format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("caption", pa.string()),
        ("sha256", pa.string()),
        ("reason", pa.string()),
        ("excerpt", pa.string()),
    ]
)


def _table(*names: str) -> pa.Schema:
    """A table schema: its columns are record columns (same types, so a task can move them over
    without a cast), renamed per RENAMED, or the run-wide CONSTANTS as strings."""
    fields = []
    for name in names:
        source = RENAMED.get(name, name)
        fields.append(
            pa.field(name, pa.string())
            if source in CONSTANTS
            else RECORD_SCHEMA.field(source).with_name(name)
        )
    return pa.schema(fields)


# Where a table column comes from when it is not the record column of the same name: a renamed
# record column, or one of the run-wide constants (`run_id`, `stage`).
RENAMED = {"doc_id": "id", "image_id": "id", "ingest_run": "run_id"}
CONSTANTS = ("run_id", "stage")
DOCUMENTS_SCHEMA = _table(
    "doc_id", "source", "uri", "locator", "text", "content_type", "fetched_at", "meta", "ingest_run"
)
IMAGES_SCHEMA = _table(
    "image_id", "source", "uri", "locator", "bytes", "format", "width", "height", "caption", "sha256"
)
QUARANTINE_SCHEMA = _table("source", "locator", "reason", "excerpt", "stage", "run_id")
TABLE_SCHEMAS = {"documents": DOCUMENTS_SCHEMA, "images": IMAGES_SCHEMA, "quarantine": QUARANTINE_SCHEMA}
# The record kind each table takes.
TABLE_KINDS = {"documents": "document", "images": "image", "quarantine": "quarantine"}

BATCH_ROWS = 512
BATCH_BYTES = 32 << 20


def _row_bytes(row: dict[str, Any]) -> int:
    return sum(len(v) for v in (row.get("text"), row.get("bytes"), row.get("meta")) if v)


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    stamp = row.get("fetched_at")
    if stamp is not None and stamp.tzinfo is None:
        row["fetched_at"] = stamp.replace(tzinfo=UTC)
    return row


def to_batches(rows: Iterable[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    """Group rows into record batches bounded by row count and payload bytes."""
    pending: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        pending.append(_utc(row))
        size += _row_bytes(row)
        if len(pending) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield pa.RecordBatch.from_pylist(pending, schema=RECORD_SCHEMA)
            pending, size = [], 0
    if pending:
        yield pa.RecordBatch.from_pylist(pending, schema=RECORD_SCHEMA)
