"""The batch side of `dedup.frames.append_column`: a batch plus one column computed from it."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

ColumnFn = Callable[[pa.RecordBatch], pa.Array]


def append_computed(batch: pa.RecordBatch, compute: ColumnFn, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with `compute(batch)` as its last column; `schema` is the input's plus that column."""
    return pa.RecordBatch.from_arrays([*batch.columns, compute(batch)], schema=schema)
