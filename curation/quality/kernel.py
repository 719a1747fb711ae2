"""The quality classifier's per-batch work, pure Arrow (no Spark): append `quality_score`, P(high quality)."""

from __future__ import annotations

import pyarrow as pa

from curation.quality.model import score_texts

QUALITY_SCORE = pa.field("quality_score", pa.float64())


class ScoreKernel:
    """Scores a batch's texts with the fastText model at `model` (loaded once per worker, by path)."""

    def __init__(self, model: str, text_column: str):
        self.model, self.text_column = model, text_column

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        scores = pa.array(score_texts(self.model, batch.column(self.text_column).to_pylist()), pa.float64())
        return pa.RecordBatch.from_arrays(
            [*batch.columns, scores], names=batch.schema.names + [QUALITY_SCORE.name]
        )
