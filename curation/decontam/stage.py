"""The `decontaminate` stage: drop documents sharing word n-grams with benchmark sets (reason `contamination`).

The index of benchmark n-grams is broadcast to every worker when it is small enough, and
joined against the documents' n-grams (a shuffle) when it is not; both give the same
columns. The fused alternative is annotate's `decontam` annotator with decide's
contamination rule (docs/architecture.md, "Annotate, then decide").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pyarrow as pa
from pydantic import Field

from curation.annotators.decontam import RULE as CONTAMINATION
from curation.annotators.decontam import BenchmarkConfig
from curation.decontam.index import DECONTAM_FIELDS, DecontamIndex
from curation.decontam.kernel import HashKernel, MatchKernel
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.drop_reason import mark
from pipelines.framework.stage import StageConfig, StageContext, StageResult, TableStage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class DecontaminateConfig(StageConfig):
    input: str = Field("annotated", description="dataset table with the text column")
    output: str = Field("decontaminated", description="dataset table written")
    text_column: str = "text"
    id_column: str = "doc_id"
    benchmarks: list[BenchmarkConfig] = Field(min_length=1, description="benchmark files to protect")
    ngram: int = Field(13, ge=3)
    min_matches: int = Field(1, ge=1, description="matched n-grams at which a document is contaminated")
    mode: Literal["auto", "broadcast", "join"] = Field(
        "auto", description="broadcast the n-gram set to every worker, or join against it (large sets)"
    )
    broadcast_max_ngrams: int = Field(5_000_000, ge=1, description="auto: broadcast up to this many n-grams")


class Decontaminate(TableStage):
    """Mark documents sharing word n-grams with benchmark sets: drop_reason "contamination"."""

    name = "decontaminate"
    Config = DecontaminateConfig

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark.sql import functions as F

        cfg: DecontaminateConfig = self.config
        df = ctx.read(cfg.input).drop(*[f.name for f in DECONTAM_FIELDS])
        index = DecontamIndex.build([b.spec() for b in cfg.benchmarks], cfg.ngram)
        mode = cfg.mode
        if mode == "auto":
            mode = "broadcast" if len(index.ngrams) <= cfg.broadcast_max_ngrams else "join"
        if mode == "broadcast":
            schema = pa.schema(list(spark_to_arrow_schema(df)) + DECONTAM_FIELDS)
            kernel = MatchKernel(ctx.spark.sparkContext.broadcast(index), cfg.text_column)
            out = apply_kernel(df, kernel, schema)
        else:
            out = _join(ctx, df, index, cfg)
        out = mark(out, F.col(CONTAMINATION.column) >= cfg.min_matches, CONTAMINATION.reason)
        metrics = {"mode": mode, "benchmark_ngrams": len(index.ngrams), "benchmarks": index.stats}
        return StageResult(tables={cfg.output: out}, metrics=metrics)


def _join(ctx: StageContext, df: DataFrame, index: DecontamIndex, cfg: DecontaminateConfig) -> DataFrame:
    """Shuffle-join document n-grams with the benchmark n-grams; per document keep the top benchmark."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if cfg.id_column not in df.columns:
        raise ValueError(f"join mode needs a unique id column; {cfg.id_column!r} is not in {cfg.input!r}")
    bench = ctx.spark.createDataFrame(index.table().to_pandas())
    probe = apply_kernel(
        df.select(cfg.id_column, cfg.text_column),
        HashKernel(cfg.ngram, cfg.text_column, cfg.id_column),
        HashKernel.schema,
    )
    per_bench = probe.join(bench, "ngram").groupBy("_doc", "benchmark").agg(F.count("*").alias("hits"))
    rank = Window.partitionBy("_doc").orderBy(F.desc("hits"), F.asc("benchmark"))
    best = (
        per_bench.withColumn("total", F.sum("hits").over(Window.partitionBy("_doc")))
        .withColumn("_rank", F.row_number().over(rank))
        .where("_rank = 1")
        .select(
            F.col("_doc"),
            F.col("total").cast("long").alias("contamination_ngrams"),
            F.col("benchmark").alias("contamination_benchmark"),
        )
    )
    joined = df.join(best, df[cfg.id_column] == best["_doc"], "left").drop("_doc")
    return joined.withColumn("contamination_ngrams", F.coalesce(F.col("contamination_ngrams"), F.lit(0)))
