"""Connected components on graphs deeper than one round of large-star/small-star can resolve,
by both paths: the distributed rounds and the one-task kernel for small graphs."""

from __future__ import annotations

import random

import pytest

from dedup.components import connected_components

DISTRIBUTED, ONE_TASK = 0, 10_000_000  # `local_edges` forcing each path


@pytest.mark.parametrize("local_edges", [DISTRIBUTED, ONE_TASK], ids=["distributed", "one_task"])
def test_long_chains_get_their_smallest_node_as_root(spark, local_edges):
    """Two paths of 200 nodes each, edges shuffled: every node's root is its path's smallest node."""
    rng = random.Random(7)
    paths = [rng.sample(range(1000), 200), rng.sample(range(1000, 2000), 200)]
    edges = [(a, b) for path in paths for a, b in zip(path, path[1:], strict=False)]
    rng.shuffle(edges)
    df = spark.createDataFrame(edges, "src long, dst long")
    roots = {row["node"]: row["root"] for row in connected_components(df, local_edges=local_edges).collect()}
    assert roots == {node: min(path) for path in paths for node in path}


def test_both_paths_agree_on_string_keys_in_spark_order(spark):
    """A random forest of string-keyed clusters with repeats, self-loops and keys whose byte order
    differs from their numeric order ("N10" < "N9"): the one-task kernel and the rounds agree."""
    rng = random.Random(11)
    keys = [f"{rng.choice('NE')}{n}" for n in rng.sample(range(100_000), 3000)] + ["Né", "Nz", "N\u4e00"]
    edges = [(rng.choice(keys), rng.choice(keys)) for _ in range(2500)]
    edges += [(k, k) for k in keys[:50]] + edges[:100]
    df = spark.createDataFrame(edges, "src string, dst string")
    distributed = {r["node"]: r["root"] for r in connected_components(df, local_edges=DISTRIBUTED).collect()}
    one_task = {r["node"]: r["root"] for r in connected_components(df, local_edges=ONE_TASK).collect()}
    assert one_task == distributed
    assert len(one_task) > 2000 and len(set(one_task.values())) > 100
