"""Repeated-line removal on Spark (CCNet-style boilerplate): count line hashes, cut the frequent ones.

Lines are hashed per document by a kernel (dedup/kernels/lines.py); a line in at
least `min_docs` documents is frequent; each document's frequent hashes are
collected and a second kernel cuts those lines from its text.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dedup.config import LineDedupConfig
from dedup.frames import append_column
from dedup.kernels.lines import line_hash_column, strip_lines
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.drop_reason import describe, kept, mark, register_reason, with_drop_reason

EMPTIED = "a document left without text once its repeated lines were removed (line_dedup)"
register_reason(LineDedupConfig.model_fields["empty_reason"].default, EMPTIED)


def _frequent_lines(df: DataFrame, c: LineDedupConfig) -> tuple[DataFrame, DataFrame]:
    """(doc_id, _remove: the document's frequent line hashes), and the frequent hashes (h)."""
    chosen = df.where(F.lit(True) if c.include_dropped else kept(df)).select("doc_id", c.text_column)
    hashes = partial(line_hash_column, text_column=c.text_column)
    hashed = append_column(chosen, "_lines", pa.list_(pa.int64()), hashes)
    hashed = hashed.select("doc_id", F.explode("_lines").alias("h")).localCheckpoint()
    frequent = hashed.groupBy("h").agg(F.count("*").alias("n")).where(F.col("n") >= c.min_docs).select("h")
    removals = hashed.join(frequent, "h").groupBy("doc_id").agg(F.collect_list("h").alias("_remove"))
    return removals, frequent


def without_repeated_lines(docs: DataFrame, c: LineDedupConfig) -> tuple[DataFrame, dict[str, Any]]:
    """The documents with frequent lines cut, `lines_removed`, and `empty_reason` where nothing is left."""
    df = with_drop_reason(docs)
    removals, frequent = _frequent_lines(df, c)
    joined = df.join(removals, "doc_id", "left")
    text = c.text_column
    base = joined.drop("lines_removed") if "lines_removed" in joined.columns else joined
    schema = spark_to_arrow_schema(base.drop(text, "_remove"))
    schema = schema.append(pa.field(text, pa.string())).append(pa.field("lines_removed", pa.int32()))
    out = apply_kernel(base, partial(strip_lines, text_column=text), schema)
    if describe(c.empty_reason) is None:
        register_reason(c.empty_reason, EMPTIED)
    emptied = (F.col("lines_removed") > 0) & (F.trim(F.col(text)) == "")
    out = mark(out, emptied, c.empty_reason)
    lines = frequent.agg(F.count("*").alias("n")).first()
    return out, {"repeated_lines": int(lines["n"])}
