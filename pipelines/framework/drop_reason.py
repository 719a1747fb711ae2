"""The one owner of `drop_reason`, the column that says why a row is not in the training set.

The invariant every stage keeps (docs/architecture.md, "Rows are never deleted"): a row
is kept while `drop_reason` is null; a stage that drops a row sets the reason only where
it is still null, so the first reason wins and no later stage clears or overwrites it.
Here are that rule's two forms, for Spark DataFrames (the stages) and for Arrow batches
(the kernels), and the registry of reasons with one line each that the report and the
web app show beside the counts.

pyspark is imported inside the Spark forms only, so that a kernel module importing
this one stays free of Spark on the workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DROP_REASON = "drop_reason"
FIELD = pa.field(DROP_REASON, pa.string())

_REASONS: dict[str, str] = {}


def register_reason(reason: str, description: str) -> str:
    """Declare a reason with the one line a reader of the report needs; returns the reason.

    Called where the reason is defined (a rule, an annotator, a stage), at import. The same
    reason declared twice must say the same thing, so two stages cannot give it two meanings.
    """
    known = _REASONS.get(reason)
    if known is not None and known != description:
        raise ValueError(f"drop reason {reason!r} is already registered as {known!r}")
    _REASONS[reason] = description
    return reason


def describe(reason: str) -> str | None:
    """The registered line for `reason`, None for a reason this process never registered."""
    return _REASONS.get(reason)


def descriptions(reasons: Iterable[str]) -> dict[str, str]:
    """`{reason: line}` for those of `reasons` that are registered (what a run record keeps)."""
    return {reason: _REASONS[reason] for reason in reasons if reason in _REASONS}


# ------------------------------------------------------------------ Spark form
def with_drop_reason(df: DataFrame) -> DataFrame:
    """`df` with a `drop_reason` column (every row kept) if it had none."""
    from pyspark.sql import functions as F

    return df if DROP_REASON in df.columns else df.withColumn(DROP_REASON, F.lit(None).cast("string"))


def kept(df: DataFrame) -> Column:
    """True on rows still kept; every row of a table without the column."""
    from pyspark.sql import functions as F

    return F.col(DROP_REASON).isNull() if DROP_REASON in df.columns else F.lit(True)


def mark(df: DataFrame, condition: Column, reason: str) -> DataFrame:
    """Set `reason` where `condition` holds on rows still kept (a null condition does not drop)."""
    from pyspark.sql import functions as F

    df = with_drop_reason(df)
    hit = F.col(DROP_REASON).isNull() & F.coalesce(condition, F.lit(False))
    return df.withColumn(DROP_REASON, F.when(hit, F.lit(reason)).otherwise(F.col(DROP_REASON)))


def mark_with(df: DataFrame, reasons: Column) -> DataFrame:
    """Set a per-row reason (a string Column, null = no reason) on rows still kept."""
    from pyspark.sql import functions as F

    df = with_drop_reason(df)
    return df.withColumn(DROP_REASON, F.coalesce(F.col(DROP_REASON), reasons))


# ------------------------------------------------------------------ Arrow form
def arrow_reasons(batch: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
    """The batch's `drop_reason` column, all null (every row kept) where it has none."""
    if DROP_REASON in batch.schema.names:
        return batch.column(DROP_REASON).cast(pa.string())
    return pa.nulls(batch.num_rows, pa.string())


def arrow_kept(batch: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
    """Boolean mask of the rows still kept."""
    return pc.is_null(arrow_reasons(batch))


def arrow_first(batch: pa.RecordBatch | pa.Table, reasons: pa.Array) -> pa.Array | pa.ChunkedArray:
    """The batch's reasons with `reasons` (per row, null = none) filled in where a row was still kept."""
    return pc.coalesce(arrow_reasons(batch), reasons.cast(pa.string()))


def arrow_mark(batch: pa.RecordBatch | pa.Table, mask: pa.Array, reason: str) -> pa.Array | pa.ChunkedArray:
    """The batch's reasons with `reason` set where `mask` holds on rows still kept (null mask = no)."""
    fill = pc.if_else(pc.fill_null(mask, False), pa.scalar(reason, pa.string()), pa.scalar(None, pa.string()))
    return arrow_first(batch, fill)


def with_arrow_reasons(batch: pa.RecordBatch, reasons: pa.Array) -> pa.RecordBatch:
    """`batch` with its `drop_reason` column replaced by `reasons`, or appended where it had none."""
    if DROP_REASON in batch.schema.names:
        index = batch.schema.get_field_index(DROP_REASON)
        columns = list(batch.columns)
        columns[index] = reasons
        return pa.RecordBatch.from_arrays(columns, schema=batch.schema.set(index, FIELD))
    return pa.RecordBatch.from_arrays([*batch.columns, reasons], schema=batch.schema.append(FIELD))
