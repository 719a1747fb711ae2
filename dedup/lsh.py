"""MinHash LSH on Spark: bands -> candidate edges -> (optional verification) -> connected components.

Every document contributes one row per band (`key, band, bucket`). Documents
sharing a (band, bucket) are candidates; instead of all pairs of a bucket (which
is quadratic in a bucket of 10,000 copies of a cookie banner) each member is
linked to the bucket's smallest key: a star has the same connected components
as the clique, with a linear number of edges. With `verify_threshold` set, an
edge is kept only when the two signatures' estimated Jaccard reaches it (the
anchor test NeMo Curator also uses). Keys are strings compared as strings, so
the smallest key of a component is its representative.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dedup.components import connected_components
from dedup.kernels.minhash import MinHashSpec, add_signatures, band_keys, from_binary

BAND_SCHEMA = T.StructType(
    [
        T.StructField("key", T.StringType(), False),
        T.StructField("band", T.IntegerType(), False),
        T.StructField("bucket", T.LongType(), False),
    ]
)
EDGE_SCHEMA = T.StructType([T.StructField("src", T.StringType()), T.StructField("dst", T.StringType())])


def with_signatures(df: DataFrame, spec: MinHashSpec, text_column: str = "text") -> DataFrame:
    """Append a `minhash` column computed by the Arrow kernel in the Python workers."""
    schema = T.StructType(
        [f for f in df.schema.fields if f.name != "minhash"] + [T.StructField("minhash", T.BinaryType())]
    )

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield add_signatures(batch, spec, text_column)

    return df.mapInArrow(run, schema)


def band_rows(signed: DataFrame, spec: MinHashSpec) -> DataFrame:
    """(key, band, bucket) for every document with a signature and every band."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            batch = batch.filter(batch.column("minhash").is_valid())
            if not batch.num_rows:
                continue
            keys = band_keys(from_binary(batch.column("minhash"), spec.num_perm), spec.bands, spec.rows)
            n = batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("key").take(pa.array(np.repeat(np.arange(n), spec.bands))),
                    pa.array(np.tile(np.arange(spec.bands, dtype=np.int32), n)),
                    pa.array(keys.reshape(-1)),
                ],
                names=["key", "band", "bucket"],
            )

    return signed.select("key", "minhash").mapInArrow(run, BAND_SCHEMA)


def candidate_edges(bands: DataFrame) -> DataFrame:
    """Each bucket member linked to the bucket's smallest key (no self edges, no repeats)."""
    bucket = Window.partitionBy("band", "bucket")
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

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            a = from_binary(batch.column("a"), spec.num_perm)
            b = from_binary(batch.column("b"), spec.num_perm)
            keep = (a == b).mean(axis=1) >= threshold
            yield pa.RecordBatch.from_arrays(
                [batch.column("src").filter(pa.array(keep)), batch.column("dst").filter(pa.array(keep))],
                names=["src", "dst"],
            )

    return pairs.select("src", "dst", "a", "b").mapInArrow(run, EDGE_SCHEMA)


def near_duplicate_roots(
    signed: DataFrame, spec: MinHashSpec, verify_threshold: float | None = None, prune: str | None = None
) -> DataFrame:
    """(node, root) for every document in a near-duplicate cluster of two or more.

    `signed` has columns key (string) and minhash. `prune`, a key prefix, drops
    edges whose two ends both start with it (used by incremental runs: documents
    already in the corpus were deduplicated against each other before).
    """
    edges = candidate_edges(band_rows(signed, spec))
    if prune is not None:
        edges = edges.where(~(F.col("src").startswith(prune) & F.col("dst").startswith(prune)))
    if verify_threshold is not None:
        edges = verified(edges, signed, spec, verify_threshold)
    return connected_components(edges)
