"""The `quality_classifier` stage: score every document with a fastText quality model, drop below the cut.

The cut is a fixed `threshold`, or the score that keeps the best `top_percentile` of the
rows still kept (an approximate quantile, so no score is collected to the driver).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from curation.quality.kernel import QUALITY_SCORE, ScoreKernel
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.drop_reason import kept, mark, register_reason, with_drop_reason
from pipelines.framework.stage import StageConfig, StageContext, StageResult, TableStage

QUALITY = register_reason(
    "quality", "the quality classifier's score is below the cut (threshold or top_percentile)"
)


class QualityClassifierConfig(StageConfig):
    input: str = Field("decided", description="dataset table with the text column")
    output: str = Field("scored", description="dataset table written with quality_score")
    model: str = Field(description="fastText model written by `refinery quality train`")
    text_column: str = "text"
    threshold: float | None = Field(None, ge=0, le=1, description="keep when quality_score >= threshold")
    top_percentile: float | None = Field(
        None, gt=0, le=100, description="keep the best N percent of still-kept documents (approxQuantile)"
    )
    relative_error: float = Field(0.001, gt=0, lt=1, description="approxQuantile relative error")

    @model_validator(mode="after")
    def _one_rule(self) -> QualityClassifierConfig:
        if self.threshold is not None and self.top_percentile is not None:
            raise ValueError("threshold/top_percentile: set one of them, not both")
        return self

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        if not Path(value).is_file():
            raise ValueError(f"model file {value!r} does not exist; train one with `refinery quality train`")
        return value


class QualityClassifier(TableStage):
    """Score every document with a fastText quality model; drop_reason "quality" below the cut."""

    name = "quality_classifier"
    Config = QualityClassifierConfig

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        cfg: QualityClassifierConfig = self.config
        df = with_drop_reason(ctx.read(cfg.input).drop(QUALITY_SCORE.name))
        schema = pa.schema(list(spark_to_arrow_schema(df)) + [QUALITY_SCORE])
        scored = apply_kernel(df, ScoreKernel(str(Path(cfg.model).resolve()), cfg.text_column), schema)
        metrics: dict[str, Any] = {"model": cfg.model}
        cut = cfg.threshold
        if cfg.top_percentile is not None:
            scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
            quantiles = scored.where(kept(scored)).approxQuantile(
                QUALITY_SCORE.name, [1 - cfg.top_percentile / 100], cfg.relative_error
            )
            cut = quantiles[0] if quantiles else None
            metrics["top_percentile"] = cfg.top_percentile
        metrics["score_cut"] = cut
        if cut is not None:
            scored = mark(scored, F.col(QUALITY_SCORE.name) < cut, QUALITY)
        return StageResult(tables={cfg.output: scored}, metrics=metrics)
