"""Near duplicates on Spark: MinHash signatures, LSH clusters (dedup/lsh.py), and the marks.

The stage and `refinery dedup files` both call `near_duplicates`, so a user's
check on their own files runs the same code as the job.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dedup.frames import EXISTING, NEW
from dedup.kernels.minhash import MinHashSpec, signatures
from dedup.lsh import near_duplicate_roots, with_signatures
from pipelines.framework.drop_reason import kept, mark, register_reason, with_drop_reason

NEAR_DUPLICATE = register_reason(
    "near_duplicate",
    "MinHash LSH put it in a cluster whose representative is another document (minhash_dedup)",
)


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


def _signed(
    docs: DataFrame, spec: MinHashSpec, text_column: str, include_dropped: bool, reuse: bool
) -> tuple[DataFrame, DataFrame]:
    """(the documents without their own `minhash`, one (doc_id, minhash) row per document taking part).

    Stored signatures, when reused, wait in `_given` to be put back on the rows that took no part.
    """
    chosen = docs.where(F.lit(True) if include_dropped else kept(docs))
    if reuse:
        check_signatures(docs, spec, text_column)
        signed = chosen.select("doc_id", "minhash")
        docs = docs.withColumnRenamed("minhash", "_given")
    else:
        signed = with_signatures(chosen.select("doc_id", text_column), spec, text_column)
        signed = signed.select("doc_id", "minhash")
        docs = docs.drop("minhash")
    # One row per doc_id, so that joining the results back can never multiply rows.
    return docs, signed.dropDuplicates(["doc_id"]).localCheckpoint()


def _clusters(
    signed: DataFrame, spec: MinHashSpec, verify_threshold: float | None, existing: DataFrame | None
) -> DataFrame:
    """(doc_id, dup_cluster) of every new document in a cluster, existing documents taking part."""
    nodes = signed.select(F.concat(F.lit(NEW), "doc_id").alias("key"), "minhash")
    if existing is not None:
        old = with_drop_reason(existing)
        old = old.where(kept(old) & F.col("minhash").isNotNull())
        nodes = nodes.unionByName(old.select(F.concat(F.lit(EXISTING), "doc_id").alias("key"), "minhash"))
    roots = near_duplicate_roots(
        nodes, spec, verify_threshold, prune=EXISTING if existing is not None else None
    )
    return (
        roots.where(F.col("node").startswith(NEW))
        .select(
            F.expr("substring(node, 2)").alias("doc_id"), F.expr("substring(root, 2)").alias("dup_cluster")
        )
        .localCheckpoint()
    )


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
    """The documents with `minhash`, `dup_cluster` and near_duplicate marks; and small metrics."""
    docs = with_drop_reason(docs)
    reuse = reuse_signatures and "minhash" in docs.columns
    docs, signed = _signed(docs, spec, text_column, include_dropped, reuse)
    roots = _clusters(signed, spec, verify_threshold, existing)
    out = docs.join(signed.join(roots, "doc_id", "left"), "doc_id", "left")
    if reuse:
        out = out.withColumn("minhash", F.coalesce("minhash", "_given")).drop("_given")
    duplicate = F.col("dup_cluster").isNotNull() & (F.col("dup_cluster") != F.col("doc_id"))
    out = mark(out, duplicate, NEAR_DUPLICATE)
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
