"""The decontaminate stage's per-batch work, pure Arrow (no Spark): match against a broadcast index, or
emit (document, n-gram) pairs for the join when the index is too big to broadcast."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from curation.decontam.index import DECONTAM_FIELDS, DecontamIndex, ngram_hashes


class MatchKernel:
    """Appends `contamination_ngrams` and `contamination_benchmark` from a broadcast index."""

    def __init__(self, index: Any, text_column: str):
        self.index = index
        self.text_column = text_column

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        index: DecontamIndex = getattr(self.index, "value", self.index)
        arrays = index.arrays(batch.column(self.text_column).to_pylist())
        return pa.RecordBatch.from_arrays(
            [*batch.columns, *arrays], names=batch.schema.names + [f.name for f in DECONTAM_FIELDS]
        )


class HashKernel:
    """One row per (document id, distinct n-gram hash): the probe side of the join mode."""

    schema = pa.schema([pa.field("_doc", pa.string()), pa.field("ngram", pa.int64())])

    def __init__(self, n: int, text_column: str, id_column: str):
        self.n, self.text_column, self.id_column = n, text_column, id_column

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ids, hashes = [], []
        for doc_id, text in zip(
            batch.column(self.id_column).to_pylist(), batch.column(self.text_column).to_pylist(), strict=True
        ):
            grams = set(ngram_hashes(text, self.n))
            ids += [doc_id] * len(grams)
            hashes += grams
        return pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.string()), pa.array(hashes, pa.int64())], schema=self.schema
        )
