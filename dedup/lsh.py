"""MinHash LSH on Spark: bands -> candidate edges -> (optional verification) -> connected components.

Every document contributes one row per band (`key, bucket`; the bucket key folds in
the band's index, so equal keys mean the same band with the same values). Documents
sharing a bucket are candidates; instead of all pairs of a bucket (which
is quadratic in a bucket of 10,000 copies of a cookie banner) each member is
linked to the bucket's smallest key: a star has the same connected components
as the clique, with a linear number of edges. With `verify_threshold` set, an
edge is kept only when the two signatures' estimated Jaccard reaches it (the
anchor test NeMo Curator also uses). Keys are strings compared as strings, so
the smallest key of a component is its representative.
"""

from __future__ import annotations

from functools import partial

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from dedup.components import connected_components
from dedup.kernels.lsh import BAND_SCHEMA, EDGE_SCHEMA, agreeing_pairs, band_rows
from dedup.kernels.minhash import SIGNATURE_FIELD, MinHashSpec, add_signatures
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema


def with_signatures(df: DataFrame, spec: MinHashSpec, text_column: str = "text") -> DataFrame:
    """Append a `minhash` column computed by the Arrow kernel in the Python workers."""
    base = df.drop("minhash") if "minhash" in df.columns else df
    schema = spark_to_arrow_schema(base).append(SIGNATURE_FIELD)
    return apply_kernel(df, partial(add_signatures, spec=spec, text_column=text_column), schema)


def banded(signed: DataFrame, spec: MinHashSpec) -> DataFrame:
    """(key, bucket) for every document with a signature and every band."""
    return apply_kernel(signed.select("key", "minhash"), partial(band_rows, spec=spec), BAND_SCHEMA)


def candidate_edges(bands: DataFrame) -> DataFrame:
    """Each bucket member linked to the bucket's smallest key (no self edges, no repeats)."""
    bucket = Window.partitionBy("bucket")
    return (
        bands.withColumn("anchor", F.min("key").over(bucket))
        .where(F.col("key") != F.col("anchor"))
        .select(F.col("anchor").alias("src"), F.col("key").alias("dst"))
        .distinct()
    )


def verified(edges: DataFrame, signed: DataFrame, spec: MinHashSpec, threshold: float) -> DataFrame:
    """Edges whose two signatures agree on at least `threshold` of their positions."""
    sigs = signed.select("key", "minhash")
    pairs = edges.join(sigs.withColumnsRenamed({"key": "src", "minhash": "a"}), "src").join(
        sigs.withColumnsRenamed({"key": "dst", "minhash": "b"}), "dst"
    )
    check = partial(agreeing_pairs, num_perm=spec.num_perm, threshold=threshold)
    return apply_kernel(pairs.select("src", "dst", "a", "b"), check, EDGE_SCHEMA)


def near_duplicate_roots(
    signed: DataFrame, spec: MinHashSpec, verify_threshold: float | None = None, prune: str | None = None
) -> DataFrame:
    """(node, root) for every document in a near-duplicate cluster of two or more.

    `signed` has columns key (string) and minhash. `prune`, a key prefix, drops
    edges whose two ends both start with it (used by incremental runs: documents
    already in the corpus were deduplicated against each other before).
    """
    edges = candidate_edges(banded(signed, spec))
    if prune is not None:
        edges = edges.where(~(F.col("src").startswith(prune) & F.col("dst").startswith(prune)))
    if verify_threshold is not None:
        edges = verified(edges, signed, spec, verify_threshold)
    return connected_components(edges)
