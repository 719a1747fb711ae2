"""The quality_classifier stage on Spark: a threshold or a top percentile of the rows still kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curation.quality.model import train
from curation.quality.stage import QualityClassifier
from tests.curation.stage_run import run_stage, table_rows


@pytest.fixture()
def model(dclm, tmp_path) -> str:
    path = tmp_path / "quality.bin"
    train([r["text"] for r in dclm], [r["label"] for r in dclm], path)
    return str(path)


def test_quality_classifier_keeps_the_top_percentile(stage_ctx, documents, model):
    stage_ctx.lake.write_arrow(documents, stage_ctx.table("decided"))
    result = run_stage(QualityClassifier(QualityClassifier.Config(model=model, top_percentile=25)), stage_ctx)
    scored = table_rows(stage_ctx, "scored")
    assert scored.num_rows == documents.num_rows
    kept = [r is None for r in scored.column("drop_reason").to_pylist()]
    assert 0.2 <= sum(kept) / len(kept) <= 0.3
    scores = scored.column("quality_score").to_pylist()
    assert min(s for s, k in zip(scores, kept, strict=True) if k) >= result.metrics["score_cut"]


def test_quality_threshold_keeps_an_earlier_reason(stage_ctx, documents, model):
    earlier = ["earlier" if i % 5 == 0 else None for i in range(documents.num_rows)]
    table = documents.append_column("drop_reason", pa.array(earlier, pa.string()))
    stage_ctx.lake.write_arrow(table, stage_ctx.table("decided"))
    run_stage(QualityClassifier(QualityClassifier.Config(model=model, threshold=0.5)), stage_ctx)
    scored = table_rows(stage_ctx, "scored").sort_by("doc_id")
    before = dict(zip(table.column("doc_id").to_pylist(), earlier, strict=True))
    for doc_id, score, reason in zip(
        *(scored.column(c).to_pylist() for c in ("doc_id", "quality_score", "drop_reason")), strict=True
    ):
        expected = before[doc_id] or ("quality" if score < 0.5 else None)
        assert reason == expected
    assert {"earlier", "quality", None} == set(scored.column("drop_reason").to_pylist())


def test_quality_config_errors_name_the_field(model, tmp_path):
    with pytest.raises(ValueError, match="threshold/top_percentile"):
        QualityClassifier.Config(model=model, threshold=0.5, top_percentile=10)
    with pytest.raises(ValueError, match="does not exist"):
        QualityClassifier.Config(model=str(tmp_path / "missing.bin"))
