"""Two small stages used to exercise the runner independently of the real curation stages.

Referenced from specs by import path (`tests.pipelines.stages_for_tests:LoadJsonl`).
"""

from __future__ import annotations

from pyspark.sql import functions as F

from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult


class LoadConfig(StageConfig):
    path: str
    output: str = "documents"


class LoadJsonl(Stage):
    """Reads a JSONL file of {text, meta} into a documents table (doc_id = hash of text and line)."""

    name = "t_load"
    Config = LoadConfig
    row_policy = "none"

    def input_tables(self) -> list[str]:
        return []

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def source_fingerprint(self, ctx: StageContext) -> str:
        from pathlib import Path

        stat = Path(self.config.path).stat()
        return f"{self.config.path}:{stat.st_size}:{stat.st_mtime_ns}"

    def run(self, ctx: StageContext) -> StageResult:
        df = ctx.spark.read.text(self.config.path).withColumn("line", F.monotonically_increasing_id())
        parsed = df.select(F.get_json_object("value", "$.text").alias("text"), "line")
        out = parsed.select(
            F.sha2(F.concat_ws("|", "text", "line"), 256).substr(1, 16).alias("doc_id"), "text"
        )
        return StageResult(tables={self.config.output: out})


class MarkConfig(StageConfig):
    input: str = "documents"
    output: str = "marked"
    min_words: int = 50


class MarkShort(Stage):
    """Adds a word count and drops documents shorter than `min_words`."""

    name = "t_mark"
    Config = MarkConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def run(self, ctx: StageContext) -> StageResult:
        df = ctx.read(self.config.input).withColumn("n_words", F.size(F.split("text", r"\s+")))
        reason = F.when(F.col("n_words") < self.config.min_words, F.lit("too_short"))
        return StageResult(tables={self.config.output: df.withColumn(DROP_REASON, reason)})
