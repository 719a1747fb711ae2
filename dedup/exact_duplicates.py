"""Exact duplicates on Spark: one window over a normalized-key hash, no join.

The representative of a group is the existing corpus's document first (in an
incremental run), then the highest `priority`, then the smallest doc_id, so the
choice never depends on partitioning.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from dedup.config import ExactDedupConfig
from dedup.frames import EXISTING, NEW, append_column
from dedup.kernels.exact import ExactNorm, exact_hash_column
from pipelines.framework.drop_reason import kept, mark, register_reason, with_drop_reason

EXACT_DUPLICATE = register_reason(
    "exact_duplicate", "its normalized text (or key) hashes like a kept document's (exact_dedup)"
)


def _exact_hashed(df: DataFrame, c: ExactDedupConfig) -> DataFrame:
    norm = ExactNorm(c.nfc, c.collapse_whitespace, c.casefold, c.letters_only)
    keyed = df.withColumn("_key", F.expr(c.key).cast("string"))
    hashes = partial(exact_hash_column, column="_key", norm=norm)
    return append_column(keyed, "exact_hash", pa.string(), hashes).drop("_key")


def exact_duplicates(docs: DataFrame, c: ExactDedupConfig, existing: DataFrame | None = None) -> DataFrame:
    """The documents with `exact_hash`, `dup_of` and exact_duplicate marks.

    Rows of `existing` (kept ones) join the groups ahead of every new row and are
    then removed again, so they can be representatives but are never output.
    """
    df = _exact_hashed(with_drop_reason(docs), c)
    prio = F.expr(c.priority) if c.priority else F.lit(0)
    df = df.withColumn("_rank", F.lit(NEW)).withColumn("_prio", prio.cast("double"))
    if existing is not None:
        old = _exact_hashed(with_drop_reason(existing), c)
        old = old.where(kept(old)).select(
            "doc_id", "exact_hash", F.lit(EXISTING).alias("_rank"), prio.cast("double").alias("_prio")
        )
        df = df.unionByName(old, allowMissingColumns=True)
    eligible = F.lit(True) if c.include_dropped else kept(df)
    takes_part = F.col("exact_hash").isNotNull() & (eligible | (F.col("_rank") == EXISTING))
    group = F.when(takes_part, F.col("exact_hash")).otherwise(F.concat(F.lit("~"), F.col("doc_id")))
    order = Window.partitionBy(group).orderBy("_rank", F.desc_nulls_last("_prio"), "doc_id")
    df = df.withColumn("_first", F.first("doc_id").over(order))
    df = df.withColumn("dup_of", F.when(takes_part & (F.col("_first") != F.col("doc_id")), F.col("_first")))
    df = mark(df, F.col("dup_of").isNotNull(), EXACT_DUPLICATE)
    return df.where(F.col("_rank") == NEW).drop("_rank", "_prio", "_first")
