"""The four dedup stages of a job spec: exact_dedup, minhash_dedup, line_dedup, image_dedup.

All of them annotate and decide, never delete (docs/architecture.md): they add
columns (hashes, cluster ids, signatures) and set the drop reason on rows that are
still kept. By default only kept rows take part, so a document dropped for
language is not chosen as anybody's representative. Representatives are
deterministic: the smallest doc_id of a cluster (or, for exact dedup, the
highest `priority` first), and in incremental runs any document already in the
corpus (`against`) before any new one. The algorithms live in their own modules
(exact_duplicates, near_duplicates, line_dedup, image_clusters), which
`refinery dedup files` reuses; a stage only reads, calls and returns.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from dedup.config import ExactDedupConfig, ImageDedupConfig, LineDedupConfig, MinHashDedupConfig
from dedup.exact_duplicates import exact_duplicates
from dedup.image_clusters import image_clusters
from dedup.line_dedup import without_repeated_lines
from dedup.near_duplicates import near_duplicates
from pipelines.framework.columns import require_columns
from pipelines.framework.stage import Stage, StageContext, StageResult, TableStage


class ExactDedup(TableStage):
    """Documents whose normalized key hashes alike: all but one get the reason "exact_duplicate"."""

    name = "exact_dedup"
    Config = ExactDedupConfig
    config: ExactDedupConfig

    def run(self, ctx: StageContext) -> StageResult:
        c = self.config
        docs = ctx.read(c.input)
        existing = ctx.read(c.against) if c.against else None
        for table, frame in ((c.input, docs), (c.against, existing)):
            if frame is not None:  # key and priority are Spark SQL, resolved as Spark does: any case
                require_columns(table, frame.columns, c.columns(), ignore_case=True)
        return StageResult(tables={c.output: exact_duplicates(docs, c, existing)})


class MinHashDedup(TableStage):
    """MinHash LSH near-duplicates: all but the representative get the reason "near_duplicate"."""

    name = "minhash_dedup"
    Config = MinHashDedupConfig
    config: MinHashDedupConfig

    def run(self, ctx: StageContext) -> StageResult:
        c = self.config
        docs = ctx.read(c.input)
        require_columns(c.input, docs.columns, [("text_column", c.text_column)])
        existing = ctx.read(c.against) if c.against else None
        if existing is not None:  # its documents take part by their stored signatures
            require_columns(c.against, existing.columns, [("against", "minhash")])
        out, metrics = near_duplicates(
            docs,
            c.spec(),
            text_column=c.text_column,
            include_dropped=c.include_dropped,
            verify_threshold=c.threshold if c.verify else None,
            existing=existing,
            reuse_signatures=c.reuse_signatures,
        )
        return StageResult(tables={c.output: out}, metrics=metrics)


class LineDedup(TableStage):
    """CCNet-style boilerplate removal: lines shared by >= min_docs documents are cut from every text."""

    name = "line_dedup"
    Config = LineDedupConfig
    config: LineDedupConfig

    def run(self, ctx: StageContext) -> StageResult:
        docs = ctx.read(self.config.input)
        require_columns(self.config.input, docs.columns, [("text_column", self.config.text_column)])
        out, metrics = without_repeated_lines(docs, self.config)
        return StageResult(tables={self.config.output: out}, metrics=metrics)


class ImageDedup(Stage):
    """Exact (bytes, pixels) and perceptual (pHash + dHash) image duplicates; corrupt images to quarantine."""

    name = "image_dedup"
    Config = ImageDedupConfig
    config: ImageDedupConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output, self.config.quarantine]

    def run(self, ctx: StageContext) -> StageResult:
        c = self.config
        out, bad, metrics = image_clusters(ctx.read(c.input), c.max_distance, c.perceptual, c.include_dropped)
        quarantine = bad.select(
            "source",
            "locator",
            F.concat(F.lit("corrupt image: "), F.col("decode_error")).alias("reason"),
            F.col("uri").alias("excerpt"),
            F.lit(self.name).alias("stage"),
            F.lit(ctx.run_id).alias("run_id"),
        )
        return StageResult(
            tables={c.output: out, c.quarantine: quarantine}, metrics=metrics, append={c.quarantine}
        )
