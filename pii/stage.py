"""The `pii` stage: redact PII in the decided documents and write the curated table.

It runs after dedup and quality decisions so that the expensive NER pass sees
only kept rows (`drop_reason` null); dropped rows still pass through pattern
redaction (or have their text withheld) because the curated table must hold no
PII whatever a row's fate. Rows in = rows out.

The output DataFrame is persisted (memory and disk) so that the metrics
aggregation and the runner's write share one analysis pass instead of two.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field

from pii.kernel import PiiKernel, output_schema
from pii.settings import PiiSettings
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.stage import StageConfig, StageContext, StageResult, TableStage


class PiiConfig(PiiSettings, StageConfig):
    """Stage parameters: PiiSettings plus the tables and what happens to dropped rows."""

    input: str = Field("decided", description=f"dataset table with text, {DROP_REASON} and (optionally) lang")
    output: str = Field("curated", description="dataset table written with redacted text")
    dropped: Literal["withhold", "patterns"] = Field(
        "withhold",
        description="dropped rows: text set to null (no PII at all), or pattern-only redaction (names remain)",
    )

    def settings(self) -> PiiSettings:
        return PiiSettings(**self.model_dump(include=set(PiiSettings.model_fields)))


def resolve_key(settings: PiiSettings) -> bytes | None:
    """The pseudonym key (from the spec or the environment variable it names); None for other policies."""
    if settings.policy != "pseudonym":
        return None
    key = settings.key or os.environ.get(settings.key_env)
    if not key:
        raise ValueError(
            f"policy 'pseudonym' needs a secret key: set the environment variable {settings.key_env} "
            "(or `key` in the stage config)"
        )
    return key.encode()


class PiiStage(TableStage):
    name: ClassVar[str] = "pii"
    Config: ClassVar[type[StageConfig]] = PiiConfig

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark import StorageLevel

        cfg: PiiConfig = self.config  # type: ignore[assignment]
        settings = cfg.settings()
        df = ctx.read(cfg.input)
        schema = output_schema(spark_to_arrow_schema(df))
        kernel = PiiKernel(settings, schema, resolve_key(settings), cfg.dropped)
        out = apply_kernel(df, kernel, schema).persist(StorageLevel.MEMORY_AND_DISK)
        return StageResult(tables={cfg.output: out}, metrics=pii_metrics(out, settings))


def pii_metrics(df: Any, settings: PiiSettings) -> dict[str, Any]:
    """Rows per scope, entities per type, and how many kept rows skipped NER for their language."""
    from pyspark.sql import functions as F

    from pii.engine import ner_decoder_used

    scopes = {
        row["pii_scope"] or "null_text": int(row["count"])
        for row in df.groupBy("pii_scope").count().collect()
    }
    entities = {
        row["key"]: int(row["n"])
        for row in df.select(F.explode("pii_counts")).groupBy("key").agg(F.sum("value").alias("n")).collect()
    }
    docs_with_pii = df.filter(F.size("pii_spans") > 0).count()
    non_ner_language = 0
    if "lang" in df.columns and settings.ner_entities():
        non_ner_language = df.filter(
            (F.col("pii_scope") == "patterns")
            & ~F.coalesce(F.col("lang").isin(settings.ner_languages), F.lit(False))
        ).count()
    return {
        "rows_by_scope": scopes,
        "entities": entities,
        "docs_with_pii": int(docs_with_pii),
        "kept_rows_without_ner_language": int(non_ner_language),
        "ner": settings.ner,
        "ner_decoder": ner_decoder_used(settings),
        "policy": settings.policy,
    }
