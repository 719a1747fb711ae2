"""The per-batch halves of MinHash LSH (dedup/lsh.py runs them on Spark): band rows and pair checks.

Both take the flat signature column (`minhash`, num_perm little-endian uint32)
and work on whole batches with numpy; neither imports Spark, so the workers
unpickle them without it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dedup.kernels.minhash import MinHashSpec, band_keys, from_binary

BAND_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("bucket", pa.int64(), nullable=False),
    ]
)
EDGE_SCHEMA = pa.schema([pa.field("src", pa.string()), pa.field("dst", pa.string())])


def band_rows(batch: pa.RecordBatch, spec: MinHashSpec) -> pa.RecordBatch:
    """(key, bucket) for every row with a signature and every band; rows without one give none.

    A bucket key folds in its band's index (`band_keys`), so one long column names
    a (band, bucket) pair: Spark groups and sorts it with a radix sort on its full
    value, where a (band, bucket) pair sorted with a comparator on 14 distinct bands.
    """
    batch = batch.filter(batch.column("minhash").is_valid())
    if not batch.num_rows:
        return pa.RecordBatch.from_pylist([], schema=BAND_SCHEMA)
    keys = band_keys(from_binary(batch.column("minhash"), spec.num_perm), spec.bands, spec.rows)
    n = batch.num_rows
    return pa.RecordBatch.from_arrays(
        [
            batch.column("key").take(pa.array(np.repeat(np.arange(n), spec.bands))),
            pa.array(keys.reshape(-1)),
        ],
        names=BAND_SCHEMA.names,
    )


def agreeing_pairs(batch: pa.RecordBatch, num_perm: int, threshold: float) -> pa.RecordBatch:
    """The (src, dst) rows whose signatures `a` and `b` agree on at least `threshold` of positions."""
    a = from_binary(batch.column("a"), num_perm)
    b = from_binary(batch.column("b"), num_perm)
    keep = pa.array((a == b).mean(axis=1) >= threshold)
    return pa.RecordBatch.from_arrays(
        [batch.column("src").filter(keep), batch.column("dst").filter(keep)], names=EDGE_SCHEMA.names
    )
