"""The one Arrow schema every reader row fits, the three tables' schemas, and batching.

Documents, images, quarantine and skipped rows share one schema (`kind` tells them
apart) so that one Spark scan of the input files yields everything; each task then
splits its rows into the three tables' files (pipelines/ingest_writer.py) without
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

DOCUMENTS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("text", pa.string()),
        ("content_type", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("meta", pa.string()),
        ("ingest_run", pa.string()),
    ]
)
IMAGES_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("bytes", pa.binary()),
        ("format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("caption", pa.string()),
        ("sha256", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("locator", pa.string()),
        ("reason", pa.string()),
        ("excerpt", pa.string()),
        ("stage", pa.string()),
        ("run_id", pa.string()),
    ]
)
TABLE_SCHEMAS = {"documents": DOCUMENTS_SCHEMA, "images": IMAGES_SCHEMA, "quarantine": QUARANTINE_SCHEMA}
# The record kind each table takes, and where a table column comes from: a record column,
# or one of the run-wide constants (`run_id`, `stage`) when the name is in CONSTANTS.
TABLE_KINDS = {"documents": "document", "images": "image", "quarantine": "quarantine"}
RENAMED = {"doc_id": "id", "image_id": "id", "ingest_run": "run_id"}
CONSTANTS = ("run_id", "stage")

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
