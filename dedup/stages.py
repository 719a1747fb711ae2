"""The four dedup stages of a job spec: exact_dedup, minhash_dedup, line_dedup, image_dedup.

All of them annotate and decide, never delete (DESIGN decision 3): they add
columns (hashes, cluster ids, signatures) and set `drop_reason` on rows that are
still kept. By default only kept rows (`drop_reason` null) take part, so a
document dropped for language is not chosen as anybody's representative.
Representatives are deterministic: the smallest doc_id of a cluster (or, for
exact dedup, the highest `priority` first), and in incremental runs any
document already in the corpus (`against`) before any new one.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from dedup.config import ExactDedupConfig, ImageDedupConfig, LineDedupConfig, MinHashDedupConfig
from dedup.kernels.exact import ExactNorm, exact_hashes
from dedup.kernels.lines import line_hashes, remove_lines
from dedup.kernels.minhash import MinHashSpec, signatures
from dedup.lsh import near_duplicate_roots, with_signatures
from pipelines.framework.stage import (
    Stage,
    StageContext,
    StageResult,
    TableStage,
    apply_kernel,
    spark_to_arrow_schema,
)

DROP = "drop_reason"
EXISTING, NEW = "0", "1"


def with_drop_reason(df: DataFrame) -> DataFrame:
    """The input with a `drop_reason` column (all kept) if it had none."""
    return df if DROP in df.columns else df.withColumn(DROP, F.lit(None).cast("string"))


def eligible(include_dropped: bool) -> Column:
    return F.lit(True) if include_dropped else F.col(DROP).isNull()


def mark(df: DataFrame, condition: Column, reason: str) -> DataFrame:
    """Set `reason` where `condition` holds on rows still kept (the first reason wins)."""
    return df.withColumn(
        DROP,
        F.when(F.col(DROP).isNull() & F.coalesce(condition, F.lit(False)), F.lit(reason)).otherwise(
            F.col(DROP)
        ),
    )


def append_column(df: DataFrame, name: str, type_: pa.DataType, fn: Any) -> DataFrame:
    """Append (or replace) one column computed from each Arrow batch by `fn(batch) -> pa.Array`."""
    base = df.drop(name) if name in df.columns else df
    schema = spark_to_arrow_schema(base).append(pa.field(name, type_))

    def kernel(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([*batch.columns, fn(batch)], schema=schema)

    return apply_kernel(base, kernel, schema)


# ---------------------------------------------------------------------------------------------- exact
class ExactDedup(TableStage):
    """Documents whose normalized key hashes alike: all but one get drop_reason "exact_duplicate"."""

    name = "exact_dedup"
    Config = ExactDedupConfig
    config: ExactDedupConfig

    def run(self, ctx: StageContext) -> StageResult:
        c = self.config
        existing = ctx.read(c.against) if c.against else None
        return StageResult(tables={c.output: exact_duplicates(ctx.read(c.input), c, existing)})


def _exact_hashed(df: DataFrame, c: ExactDedupConfig) -> DataFrame:
    norm = ExactNorm(c.nfc, c.collapse_whitespace, c.casefold, c.letters_only)
    keyed = df.withColumn("_key", F.expr(c.key).cast("string"))
    return append_column(
        keyed, "exact_hash", pa.string(), lambda b: exact_hashes(b.column("_key"), norm)
    ).drop("_key")


def exact_duplicates(docs: DataFrame, c: ExactDedupConfig, existing: DataFrame | None = None) -> DataFrame:
    """The documents with `exact_hash`, `dup_of` and exact_duplicate marks (one window, no join).

    Rows of `existing` (kept ones) join the groups ahead of every new row and are
    then removed again, so they can be representatives but are never output.
    """
    df = _exact_hashed(with_drop_reason(docs), c)
    prio = F.expr(c.priority) if c.priority else F.lit(0)
    df = df.withColumn("_rank", F.lit(NEW)).withColumn("_prio", prio.cast("double"))
    if existing is not None:
        old = _exact_hashed(with_drop_reason(existing), c).where(F.col(DROP).isNull())
        old = old.select(
            "doc_id", "exact_hash", F.lit(EXISTING).alias("_rank"), prio.cast("double").alias("_prio")
        )
        df = df.unionByName(old, allowMissingColumns=True)
    takes_part = F.col("exact_hash").isNotNull() & (
        eligible(c.include_dropped) | (F.col("_rank") == EXISTING)
    )
    group = F.when(takes_part, F.col("exact_hash")).otherwise(F.concat(F.lit("~"), F.col("doc_id")))
    order = Window.partitionBy(group).orderBy("_rank", F.desc_nulls_last("_prio"), "doc_id")
    df = df.withColumn("_first", F.first("doc_id").over(order))
    df = df.withColumn("dup_of", F.when(takes_part & (F.col("_first") != F.col("doc_id")), F.col("_first")))
    df = mark(df, F.col("dup_of").isNotNull(), "exact_duplicate")
    return df.where(F.col("_rank") == NEW).drop("_rank", "_prio", "_first")


# -------------------------------------------------------------------------------------------- minhash
def near_duplicates(
    docs: DataFrame,
    spec: MinHashSpec,
    *,
    text_column: str = "text",
    include_dropped: bool = False,
    verify_threshold: float | None = None,
    existing: DataFrame | None = None,
    reuse_signatures: bool = False,
) -> tuple[DataFrame, dict[str, Any]]:
    """The documents with `minhash`, `dup_cluster` and near_duplicate marks; and small metrics.

    Used by the stage and by `refinery dedup files`, so both run the same code.
    """
    docs = with_drop_reason(docs)
    if reuse_signatures and "minhash" in docs.columns:
        check_signatures(docs, spec, text_column)
    if not (reuse_signatures and "minhash" in docs.columns):
        chosen = docs.where(eligible(include_dropped)).select("doc_id", text_column)
        signed = with_signatures(chosen, spec, text_column).select("doc_id", "minhash")
        docs = docs.drop("minhash")
    else:
        signed = docs.where(eligible(include_dropped)).select("doc_id", "minhash")
        docs = docs.withColumnRenamed("minhash", "_given")
    # One row per doc_id, so that joining the results back can never multiply rows.
    signed = signed.dropDuplicates(["doc_id"]).localCheckpoint()
    nodes = signed.select(F.concat(F.lit(NEW), "doc_id").alias("key"), "minhash")
    if existing is not None:
        old = with_drop_reason(existing).where(F.col(DROP).isNull() & F.col("minhash").isNotNull())
        nodes = nodes.unionByName(old.select(F.concat(F.lit(EXISTING), "doc_id").alias("key"), "minhash"))
    roots = near_duplicate_roots(
        nodes, spec, verify_threshold, prune=EXISTING if existing is not None else None
    )
    roots = (
        roots.where(F.col("node").startswith(NEW))
        .select(
            F.expr("substring(node, 2)").alias("doc_id"), F.expr("substring(root, 2)").alias("dup_cluster")
        )
        .localCheckpoint()
    )
    extra = signed.join(roots, "doc_id", "left")
    out = docs.join(extra, "doc_id", "left")
    if reuse_signatures and "_given" in out.columns:
        out = out.withColumn("minhash", F.coalesce("minhash", "_given")).drop("_given")
    out = mark(
        out, F.col("dup_cluster").isNotNull() & (F.col("dup_cluster") != F.col("doc_id")), "near_duplicate"
    )
    clustered = roots.agg(
        F.count("*").alias("docs"), F.countDistinct("dup_cluster").alias("clusters")
    ).first()
    metrics = {
        "bands": spec.bands,
        "rows": spec.rows,
        "num_perm": spec.num_perm,
        "clustered_docs": int(clustered["docs"]),
        "clusters": int(clustered["clusters"]),
    }
    return out, metrics


def check_signatures(docs: DataFrame, spec: MinHashSpec, text_column: str, sample: int = 16) -> None:
    """Recompute a few stored signatures: reuse is only safe when the settings and the text are
    unchanged since they were computed, and a silent mismatch would pair unrelated documents."""
    rows = docs.where(F.col("minhash").isNotNull()).select(text_column, "minhash").limit(sample).collect()
    if not rows:
        return
    fresh = signatures(pa.array([r[0] for r in rows], pa.string()), spec).to_pylist()
    if any(bytes(r[1]) != f for r, f in zip(rows, fresh, strict=True)):
        raise ValueError(
            "minhash_dedup: the stored minhash column does not match this stage's signature settings "
            "(num_perm, ngram, seed, tokenization, normalization) or the text changed since it was "
            "computed; give annotate's `minhash` the same settings, or set reuse_signatures: false"
        )


class MinHashDedup(TableStage):
    """MinHash LSH near-duplicates: all but the representative get drop_reason "near_duplicate"."""

    name = "minhash_dedup"
    Config = MinHashDedupConfig
    config: MinHashDedupConfig

    def run(self, ctx: StageContext) -> StageResult:
        c = self.config
        existing = ctx.read(c.against) if c.against else None
        out, metrics = near_duplicates(
            ctx.read(c.input),
            c.spec(),
            text_column=c.text_column,
            include_dropped=c.include_dropped,
            verify_threshold=c.threshold if c.verify else None,
            existing=existing,
            reuse_signatures=c.reuse_signatures,
        )
        return StageResult(tables={c.output: out}, metrics=metrics)


# ---------------------------------------------------------------------------------------------- lines
class LineDedup(TableStage):
    """CCNet-style boilerplate removal: lines shared by >= min_docs documents are cut from every text."""

    name = "line_dedup"
    Config = LineDedupConfig
    config: LineDedupConfig

    def run(self, ctx: StageContext) -> StageResult:
        c = self.config
        df = with_drop_reason(ctx.read(c.input))
        chosen = df.where(eligible(c.include_dropped)).select("doc_id", c.text_column)
        hashed = append_column(
            chosen, "_lines", pa.list_(pa.int64()), lambda b: line_hashes(b.column(c.text_column))
        ).select("doc_id", F.explode("_lines").alias("h"))
        hashed = hashed.localCheckpoint()
        frequent = (
            hashed.groupBy("h").agg(F.count("*").alias("n")).where(F.col("n") >= c.min_docs).select("h")
        )
        removals = hashed.join(frequent, "h").groupBy("doc_id").agg(F.collect_list("h").alias("_remove"))
        joined = df.join(removals, "doc_id", "left")
        text = c.text_column

        def strip(batch: pa.RecordBatch) -> pa.RecordBatch:
            new_text, counts = remove_lines(batch.column(text), batch.column("_remove"))
            names = [n for n in batch.schema.names if n not in (text, "_remove", "lines_removed")]
            return pa.RecordBatch.from_arrays(
                [batch.column(n) for n in names] + [new_text, counts], names=[*names, text, "lines_removed"]
            )

        base = joined.drop("lines_removed") if "lines_removed" in joined.columns else joined
        schema = spark_to_arrow_schema(base.drop(text, "_remove"))
        schema = schema.append(pa.field(text, pa.string())).append(pa.field("lines_removed", pa.int32()))
        out = apply_kernel(base, strip, schema)
        emptied = (F.col("lines_removed") > 0) & (F.trim(F.col(text)) == "")
        out = mark(out, emptied, c.empty_reason)
        lines = frequent.agg(F.count("*").alias("n")).first()
        return StageResult(tables={c.output: out}, metrics={"repeated_lines": int(lines["n"])})


# --------------------------------------------------------------------------------------------- images
class ImageDedup(Stage):
    """Exact (bytes, pixels) and perceptual (pHash + dHash) image duplicates; corrupt images to quarantine."""

    name = "image_dedup"
    Config = ImageDedupConfig
    config: ImageDedupConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output, self.config.quarantine]

    def run(self, ctx: StageContext) -> StageResult:
        from dedup.image_clusters import image_clusters

        c = self.config
        df = with_drop_reason(ctx.read(c.input))
        out, bad, metrics = image_clusters(df, c.max_distance, c.perceptual, c.include_dropped)
        quarantine = bad.select(
            "source",
            "locator",
            F.concat(F.lit("corrupt image: "), F.col("decode_error")).alias("reason"),
            F.col("uri").alias("excerpt"),
            F.lit(self.name).alias("stage"),
            F.lit(ctx.run_id).alias("run_id"),
        )
        return StageResult(
            tables={c.output: out, c.quarantine: quarantine}, metrics=metrics, append={c.quarantine}
        )
