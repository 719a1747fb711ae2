"""dedup's batch functions on Arrow alone (what the Spark workers run), and the reasons dedup registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from dedup.kernels.lsh import BAND_SCHEMA, EDGE_SCHEMA, agreeing_pairs, band_rows
from dedup.kernels.minhash import MinHashSpec, band_keys, from_binary, signatures

REPO = Path(__file__).resolve().parents[2]
SPEC = MinHashSpec(num_perm=16, bands=4, rows=4)
TEXTS = [
    "the river runs past the old mill and under the stone bridge to the sea",
    "the river runs past the old mill and under the stone bridge to the bay",
    "",
]


def _signed() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(["a", "b", "c"]), signatures(pa.array(TEXTS), SPEC)], names=["key", "minhash"]
    )


def test_band_rows_are_one_row_per_document_and_band_keyed_like_band_keys() -> None:
    batch = _signed()
    rows = band_rows(batch, SPEC)
    assert rows.schema.names == BAND_SCHEMA.names
    # the empty text has no signature and so no band rows
    assert rows.column("key").to_pylist() == ["a"] * 4 + ["b"] * 4
    expected = band_keys(from_binary(batch.column("minhash").slice(0, 2), SPEC.num_perm), 4, 4)
    assert rows.column("bucket").to_pylist() == expected.reshape(-1).tolist()


def test_bucket_keys_name_their_band_so_equal_values_in_two_bands_never_share_a_bucket() -> None:
    # The Spark side groups on the bucket key alone: it must carry the band.
    matrix = np.zeros((3, 16), dtype=np.uint32)
    keys = band_keys(matrix, 4, 4)
    assert len(set(keys[0].tolist())) == 4
    assert (keys == keys[0]).all()


def test_band_rows_of_a_batch_without_signatures_is_empty_and_typed() -> None:
    batch = _signed().slice(2, 1)
    rows = band_rows(batch, SPEC)
    assert rows.num_rows == 0 and rows.schema == BAND_SCHEMA


def test_agreeing_pairs_keep_pairs_at_or_above_the_threshold() -> None:
    sigs = signatures(pa.array(TEXTS[:2]), SPEC)
    agree = float(np.mean(from_binary(sigs, 16)[0] == from_binary(sigs, 16)[1]))
    pairs = pa.RecordBatch.from_arrays(
        [
            pa.array(["a", "a"]),
            pa.array(["a", "b"]),
            pa.array([sigs[0], sigs[0]]),
            pa.array([sigs[0], sigs[1]]),
        ],
        names=["src", "dst", "a", "b"],
    )
    kept = agreeing_pairs(pairs, 16, agree)
    assert kept.schema.names == EDGE_SCHEMA.names
    assert kept.column("dst").to_pylist() == ["a", "b"]
    assert agreeing_pairs(pairs, 16, min(1.0, agree + 1e-9)).column("dst").to_pylist() == ["a"]


def test_every_reason_dedup_sets_is_registered_with_a_line() -> None:
    """In a fresh interpreter: importing the stages registers what they mark."""
    probe = (
        "import dedup.stages\n"
        "from pipelines.framework.drop_reason import describe\n"
        "for r in ('exact_duplicate', 'near_duplicate', 'boilerplate_only', 'exact_duplicate_image',"
        " 'near_duplicate_image'):\n"
        "    assert describe(r), r\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
