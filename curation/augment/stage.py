"""The `augment` stage: mixture weights (repeat / downsample) and optional text and image noise.

Every decision is a pure function of (seed, row id, operation): a rerun on the same
table version gives the same rows, and no decision depends on batch or partition
boundaries. The stage never deletes: a row downsampled by the mixture keeps its
place with `drop_reason = "mixture_downsampled"` (first reason wins, so rows an
earlier stage dropped pass through untouched). Added rows carry
`augmented_from` (the parent id), `operation` and `params` (JSON of every value
drawn), and the parent's other columns; captions are carried over for images.

Train/validation leakage: added rows keep their parent's id in `augmented_from`
and the `shards` stage splits by `coalesce(augmented_from, doc_id)`, so every
variant lands in its parent's split.

Mixing (DCLM / Nemotron style repeat factors): a kept row's weight is
`source_weights[source] * quality_weights[bucket(quality_score)]`. Weight w gives
floor(w) copies in total, plus one more when the row's hash falls under the
fractional part; w < 1 therefore keeps the row with probability w.
"""

from __future__ import annotations

from typing import Any, ClassVar

from curation.augment.config import AugmentConfig
from curation.augment.kernel import DOWNSAMPLED, DocumentAugmenter, ImageAugmenter
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.stage import Stage, StageContext, StageResult


class Augment(Stage):
    """Add mixture repeats and noisy variants of kept rows (documents, optionally images)."""

    name = "augment"
    Config = AugmentConfig
    row_policy: ClassVar[str] = "expand"
    config: AugmentConfig

    def input_tables(self) -> list[str]:
        return [self.config.input] + ([self.config.images_input] if self.config.images_input else [])

    def output_tables(self) -> list[str]:
        return [self.config.output] + ([self.config.images_output] if self.config.images_input else [])

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        tables = {}
        metrics: dict[str, Any] = {}
        docs = ctx.read(cfg.input)
        schema = spark_to_arrow_schema(docs)
        for column in (cfg.id_column, "text"):
            if column not in schema.names:
                raise ValueError(f"table {cfg.input!r} has no {column!r} column (columns: {schema.names})")
        augmenter = DocumentAugmenter(cfg, schema)
        tables[cfg.output] = apply_kernel(docs, augmenter, augmenter.schema)
        metrics["documents"] = _operation_counts(tables[cfg.output])
        if cfg.images_input:
            images = ctx.read(cfg.images_input)
            image_aug = ImageAugmenter(cfg, spark_to_arrow_schema(images))
            tables[cfg.images_output] = apply_kernel(images, image_aug, image_aug.schema)
            metrics["images"] = _operation_counts(tables[cfg.images_output])
        metrics["mixture"] = cfg.mixture.model_dump()
        return StageResult(tables=tables, metrics=metrics)


def _operation_counts(df: Any) -> dict[str, int]:
    """Rows per operation ("original" for input rows) and downsampled rows: a small aggregate."""
    from pyspark.sql import functions as F

    counts = (
        df.select(
            F.coalesce(F.col("operation"), F.lit("original")).alias("op"),
            (F.col(DROP_REASON) == F.lit(DOWNSAMPLED)).alias("down"),
        )
        .groupBy("op")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col("down").cast("int")).alias("down"))
        .collect()
    )
    out = {row["op"]: int(row["rows"]) for row in counts}
    out[DOWNSAMPLED] = sum(int(row["down"] or 0) for row in counts)
    return dict(sorted(out.items()))
