"""Image duplicate clusters on Spark: exact (bytes, pixels) and perceptual (pHash/dHash bands).

Candidates for perceptual matches come from hash bands: with k + 1 bands of
each 64-bit pHash, two hashes within Hamming distance k share at least one band
(pigeonhole), so no pair within k is missed by the bucketing. Each bucket member
is compared with the bucket's smallest image id (a star, linear in bucket size)
and kept when both its pHash and dHash are within k of it. Exact groups and
perceptual edges are joined into connected components; the smallest image id of
each is the representative.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from dedup.components import connected_components
from dedup.kernels.images import FINGERPRINT_SCHEMA, HASH_COLUMNS, image_fingerprints
from pipelines.framework.arrow_kernel import apply_kernel
from pipelines.framework.drop_reason import kept, mark, register_reason, with_drop_reason

EXACT_DUPLICATE_IMAGE = register_reason(
    "exact_duplicate_image", "the same pixels as its cluster's representative image (image_dedup)"
)
NEAR_DUPLICATE_IMAGE = register_reason(
    "near_duplicate_image",
    "a resized or recompressed copy of its cluster's representative image (image_dedup)",
)


def fingerprints(images: DataFrame) -> DataFrame:
    """(image_id, sha256, pixel_sha256, phash, dhash, decode_error), one row per image id, checkpointed."""
    cols = ["image_id", "bytes"] + (["sha256"] if "sha256" in images.columns else [])
    hashed = apply_kernel(images.select(*cols), image_fingerprints, FINGERPRINT_SCHEMA)
    return hashed.dropDuplicates(["image_id"]).localCheckpoint()


def _exact_edges(nodes: DataFrame, column: str) -> DataFrame:
    first = F.min("image_id").over(Window.partitionBy(column))
    return (
        nodes.where(F.col(column).isNotNull())
        .withColumn("src", first)
        .where(F.col("src") != F.col("image_id"))
        .select("src", F.col("image_id").alias("dst"))
    )


def _perceptual_edges(nodes: DataFrame, max_distance: int) -> DataFrame:
    bands = max_distance + 1
    width = 64 // bands
    parts = [
        F.struct(
            F.lit(i).alias("band"),
            F.shiftrightunsigned("phash", i * width)
            .bitwiseAND(F.lit((1 << width) - 1 if i < bands - 1 else -1))
            .alias("part"),
        )
        for i in range(bands)
    ]
    banded = nodes.where(F.col("phash").isNotNull()).select("image_id", F.explode(F.array(*parts)).alias("b"))
    banded = banded.select("image_id", "b.band", "b.part")
    anchor = F.min("image_id").over(Window.partitionBy("band", "part"))
    pairs = (
        banded.withColumn("src", anchor)
        .where(F.col("src") != F.col("image_id"))
        .select("src", F.col("image_id").alias("dst"))
        .distinct()
    )
    left = nodes.select(
        F.col("image_id").alias("src"), F.col("phash").alias("p1"), F.col("dhash").alias("d1")
    )
    right = nodes.select(
        F.col("image_id").alias("dst"), F.col("phash").alias("p2"), F.col("dhash").alias("d2")
    )
    close = (F.bit_count(F.col("p1").bitwiseXOR(F.col("p2"))) <= max_distance) & (
        F.bit_count(F.col("d1").bitwiseXOR(F.col("d2"))) <= max_distance
    )
    return pairs.join(left, "src").join(right, "dst").where(close).select("src", "dst")


def image_clusters(
    images: DataFrame, max_distance: int, perceptual: bool, include_dropped: bool
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """(images with hashes, dup_cluster and marks; undecodable images; metrics).

    Undecodable images are not in the first frame: they go to quarantine, so rows
    in = rows out + rows quarantined.
    """
    images = with_drop_reason(images)
    fp = fingerprints(images)
    joined = images.drop(*[c for c in (*HASH_COLUMNS, "dup_cluster") if c in images.columns])
    joined = (
        joined.drop("sha256").join(fp, "image_id", "left")
        if "sha256" in images.columns
        else joined.join(fp, "image_id", "left")
    )
    bad = joined.where(F.col("decode_error").isNotNull())
    good = joined.where(F.col("decode_error").isNull()).drop("decode_error")
    nodes = good.where(F.lit(True) if include_dropped else kept(good)).select(
        "image_id", "sha256", "pixel_sha256", "phash", "dhash"
    )
    edges = _exact_edges(nodes, "sha256").unionByName(_exact_edges(nodes, "pixel_sha256"))
    if perceptual:
        edges = edges.unionByName(_perceptual_edges(nodes, max_distance))
    roots = connected_components(edges)
    rep_pixels = fp.select(F.col("image_id").alias("root"), F.col("pixel_sha256").alias("_root_pixels"))
    roots = roots.join(rep_pixels, "root").select(
        F.col("node").alias("image_id"), F.col("root").alias("dup_cluster"), "_root_pixels"
    )
    out = good.join(roots, "image_id", "left")
    duplicate = F.col("dup_cluster").isNotNull() & (F.col("dup_cluster") != F.col("image_id"))
    out = mark(out, duplicate & (F.col("pixel_sha256") == F.col("_root_pixels")), EXACT_DUPLICATE_IMAGE)
    out = mark(out, duplicate, NEAR_DUPLICATE_IMAGE).drop("_root_pixels")
    counts = fp.agg(F.count(F.col("decode_error")).alias("corrupt")).first()
    clusters = roots.agg(
        F.countDistinct("dup_cluster").alias("clusters"), F.count("*").alias("members")
    ).first()
    metrics = {
        "corrupt_images": int(counts["corrupt"]),
        "image_clusters": int(clusters["clusters"]),
        "clustered_images": int(clusters["members"]),
    }
    return out, bad, metrics
