"""Connected components on graphs deeper than one round of large-star/small-star can resolve."""

from __future__ import annotations

import random

from dedup.components import connected_components


def test_long_chains_get_their_smallest_node_as_root(spark):
    """Two paths of 200 nodes each, edges shuffled: every node's root is its path's smallest node."""
    rng = random.Random(7)
    paths = [rng.sample(range(1000), 200), rng.sample(range(1000, 2000), 200)]
    edges = [(a, b) for path in paths for a, b in zip(path, path[1:], strict=False)]
    rng.shuffle(edges)
    df = spark.createDataFrame(edges, "src long, dst long")
    roots = {row["node"]: row["root"] for row in connected_components(df).collect()}
    assert roots == {node: min(path) for path in paths for node in path}
