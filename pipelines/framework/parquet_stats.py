"""Delta add-action statistics read from a Parquet file's footer.

A commit carries each file's numRecords and per-column min/max/nullCount, so that row counts
(the runner's accounting) and file skipping never open a data file (docs/architecture.md,
"Delta through delta-rs").
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MAX_STAT_STRING = 64


def _stat_value(value: Any) -> Any:
    """Convert a Parquet statistic into the JSON form Delta readers expect, or None to skip it."""
    if isinstance(value, bytes):
        return None
    if isinstance(value, str):
        return value if len(value) <= MAX_STAT_STRING else None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bool, int, float)):
        return value
    return None


def parquet_stats(meta: pq.FileMetaData) -> tuple[int, dict[str, Any]]:
    """numRecords and per-column min/max/nullCount from a file's footer (top-level primitives only).

    Takes the footer, not a path: a task that just wrote the file holds it already, and on object
    storage reading it back would cost a request per file.
    """
    schema = meta.schema.to_arrow_schema()
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    # Parquet leaves are not Arrow fields: a list or struct column has several leaves,
    # so columns are matched by their leaf path, never by position.
    leaf_index = (
        {meta.row_group(0).column(j).path_in_schema: j for j in range(meta.num_columns)}
        if meta.num_row_groups
        else {}
    )
    for field in schema:
        if pa.types.is_nested(field.type) or pa.types.is_binary(field.type) or field.name not in leaf_index:
            continue
        col_index = leaf_index[field.name]
        lo = hi = None
        null_count = 0
        complete = meta.num_row_groups > 0
        for rg in range(meta.num_row_groups):
            column = meta.row_group(rg).column(col_index)
            stats = column.statistics
            if stats is None:
                complete = False
                break
            null_count += stats.null_count or 0
            if stats.has_min_max:
                lo = stats.min if lo is None else min(lo, stats.min)
                hi = stats.max if hi is None else max(hi, stats.max)
        if not complete:
            continue
        nulls[field.name] = null_count
        if lo is not None and (vlo := _stat_value(lo)) is not None and (vhi := _stat_value(hi)) is not None:
            mins[field.name] = vlo
            maxs[field.name] = vhi
    stats_json = {"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    return meta.num_rows, stats_json
