"""The one Arrow schema every reader row fits, and batching of rows into it.

Documents, images, quarantine and skipped rows share one schema (`kind` tells them
apart) so that one Spark scan of the input files yields everything, which is then
persisted once and split into the three tables without reading the input again.
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
