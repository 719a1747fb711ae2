"""Connected components of an edge DataFrame, in Spark, by alternating large-star / small-star.

Why this algorithm (Kiveris et al., "Connected Components in MapReduce and
Beyond", 2014): every round is two group-bys and two joins on edges, it needs no
graph library (GraphFrames is a Maven jar, and its result depends on
partitioning), it converges in O(log^2 n) rounds, and the label it ends with is
the smallest node of each component, whatever the partitioning: the same input
always gives the same clusters, and "smallest node" is the representative rule.

Nothing is collected: the only driver-side values are per-round edge counts.
Each round's edges are `localCheckpoint`ed, which truncates the lineage (a plan
that grows with the rounds would otherwise take longer to plan than to run).

A graph of at most `LOCAL_EDGES` edges (after removing self-loops and repeats) is
solved in one task instead (`dedup/kernels/components.py`): same roots, none of the
rounds' fixed cost, and the task's memory is bounded by the limit, not the corpus.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from dedup.kernels.components import components_kernel
from pipelines.framework.arrow_kernel import apply_kernel

MAX_ROUNDS = 64
# About 200 MB of a Python worker's memory for string keys of ~40 bytes; larger graphs take the
# distributed rounds, whose memory is spread over the cluster.
LOCAL_EDGES = 2_000_000


def _undirected(edges: DataFrame) -> DataFrame:
    return edges.unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))


def _large_star(edges: DataFrame) -> DataFrame:
    """Connect every larger neighbour of u to the smallest node of u's neighbourhood (u included)."""
    both = _undirected(edges)
    smallest = both.groupBy("src").agg(F.least(F.min("dst"), F.col("src")).alias("m"))
    return (
        both.join(smallest, "src")
        .where(F.col("dst") > F.col("src"))
        .select(F.col("dst").alias("src"), F.col("m").alias("dst"))
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Connect u and its smaller neighbours to the smallest of them."""
    oriented = edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst")).where(
        F.col("src") != F.col("dst")
    )
    smallest = oriented.groupBy("src").agg(F.min("dst").alias("m"))
    spokes = oriented.join(smallest, "src").select(F.col("dst").alias("src"), F.col("m").alias("dst"))
    centre = smallest.select("src", F.col("m").alias("dst"))
    return spokes.unionByName(centre).where(F.col("src") != F.col("dst")).distinct()


def _fingerprint(edges: DataFrame) -> tuple[int, int, int]:
    """(count, two order-free 64-bit checksums) of an edge set: one small aggregate, one Spark job.

    It also materializes a lazily checkpointed frame, so a round costs two jobs.
    """
    row = edges.agg(
        F.count("*").alias("n"),
        F.sum(F.xxhash64("src", "dst").cast("decimal(38,0)")).alias("a"),
        F.sum(F.hash("dst", "src").cast("decimal(38,0)")).alias("b"),
    ).first()
    return int(row["n"]), int(row["a"] or 0), int(row["b"] or 0)


def _in_one_task(edges: DataFrame) -> DataFrame:
    """(node, root) from the one-task kernel; the edges are moved to one partition, not the driver."""
    kind = edges.schema["src"].dataType
    schema = StructType([StructField("node", kind, False), StructField("root", kind, False)])
    return apply_kernel(edges.coalesce(1), components_kernel, schema, stream=True)


def connected_components(
    edges: DataFrame, max_rounds: int = MAX_ROUNDS, local_edges: int = LOCAL_EDGES
) -> DataFrame:
    """(node, root) for every node that appears in `edges` (columns src, dst of one orderable type).

    `root` is the smallest node of the node's component (the root's own row has
    node == root). The loop stops when a large-star step leaves the edge set as it
    was (compared by count and two checksums). Raises if that has not happened
    after `max_rounds`. Up to `local_edges` distinct edges are solved in one task.
    """
    current = (
        edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst"))
        .where(F.col("src") != F.col("dst"))
        .distinct()
        .localCheckpoint(eager=False)
    )
    previous = _fingerprint(current)
    if previous[0] <= local_edges:
        return _in_one_task(current)
    for _ in range(max_rounds):
        large = _large_star(current).localCheckpoint(eager=False)
        changed = _fingerprint(large) != previous
        current = _small_star(large).localCheckpoint(eager=False)
        previous = _fingerprint(current)
        if not changed:
            break
    else:
        raise RuntimeError(
            f"connected components did not converge in {max_rounds} rounds; raise max_rounds "
            "(each round at least halves the depth of the largest component)"
        )
    labels = _undirected(current).groupBy("src").agg(F.least(F.min("dst"), F.col("src")).alias("root"))
    return labels.select(F.col("src").alias("node"), "root")
