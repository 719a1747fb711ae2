"""Curation stages: annotate (one fused scan), decide (thresholds -> drop_reason), decontaminate, quality_classifier.

DESIGN decision 3: `annotate` only adds columns; `decide` turns them into
`drop_reason` with thresholds that can change and be re-applied without a rescan.
Every stage keeps rows in = rows out and never clears an earlier reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.annotate import Annotator
from curation.blocklist import DomainBlocklist, WordBlocklist
from curation.decontam import DECONTAM_FIELDS, BenchmarkSpec, DecontamIndex, ngram_hashes
from curation.langid_ensemble import LangIdConfig
from curation.rules import (
    CONTAMINATION,
    DROP_REASON,
    DROP_REASONS,
    SIGNALS_MISSING,
    URL_BLOCKLIST,
    WORD_BLOCKLIST,
    language_rules,
    preset_rules,
    reasons_in_order,
    spark_failing,
)
from curation.signals import GOPHER_STOP_WORDS, SignalParams
from dedup.config import SignatureConfig
from dedup.kernels.minhash import SIGNATURE_FIELD, SignatureKernel
from pipelines.framework.stage import (
    StageConfig,
    StageContext,
    StageResult,
    TableStage,
    apply_kernel,
    spark_to_arrow_schema,
)


class BenchmarkConfig(StageConfig):
    path: str = Field(description="JSONL or CSV file (optionally .gz) of benchmark items")
    name: str | None = Field(None, description="name recorded on matches (default: from the file name)")
    fields: list[str] | None = Field(
        None, description="fields holding the text to protect (default: question/prompt/...)"
    )

    def spec(self) -> BenchmarkSpec:
        return BenchmarkSpec(Path(self.path), self.name, self.fields)


def _with_drop_reason(df):
    """The DataFrame with a `drop_reason` column (null = kept) if it had none."""
    from pyspark.sql import functions as F

    return df if DROP_REASON in df.columns else df.withColumn(DROP_REASON, F.lit(None).cast("string"))


def _nested_last(df):
    """Reorder columns so list/struct/map columns come last.

    Works around pipelines/framework/lake.py's `parquet_stats`, which pairs Arrow field i
    with Parquet leaf column i: a nested column has several leaves, so every
    column after it would get another column's min/max in the Delta log (which
    delta-rs then rejects, or worse, uses to skip files). Reported to the lead.
    """
    from pyspark.sql.types import ArrayType, MapType, StructType

    nested = (ArrayType, MapType, StructType)
    flat = [f.name for f in df.schema.fields if not isinstance(f.dataType, nested)]
    deep = [f.name for f in df.schema.fields if isinstance(f.dataType, nested)]
    return df.select(*flat, *deep)


def _set_reason(df, failing_reason):
    """Set `drop_reason` from a string Column only on rows still kept (the first reason wins)."""
    from pyspark.sql import functions as F

    df = _with_drop_reason(df)
    return df.withColumn(DROP_REASON, F.coalesce(F.col(DROP_REASON), failing_reason))


# ------------------------------------------------------------------ annotate
class AnnotateConfig(StageConfig):
    input: str = Field("documents", description="dataset table to annotate")
    output: str = Field("annotated", description="dataset table written (input columns + annotations)")
    text_column: str = "text"
    url_column: str = "uri"
    langid: LangIdConfig | None = Field(
        default_factory=LangIdConfig,
        description="language ID backend ({backend: fasttext | ensemble | lingua, ...}; true = the default, "
        "false = none): adds lang, lang_score, lang_model, lang_script, lang_top3",
    )
    signals: bool = Field(True, description="add the Gopher/C4/FineWeb signal columns")
    stop_words: list[str] = Field(
        list(GOPHER_STOP_WORDS), description="words counted by gopher_stop_word_count"
    )
    c4_min_words_per_line: int = 3
    c4_max_word_length: int = 1000
    fineweb_short_line_length: int = 30
    benchmarks: list[BenchmarkConfig] = Field(
        default_factory=list, description="add n-gram hits against these"
    )
    ngram: int = Field(13, ge=3, description="decontamination n-gram length in words")
    url_blocklist: str | None = Field(None, description="file of blocked domains -> url_blocked")
    word_blocklist: str | None = Field(None, description="file of blocked words -> blocked_word_count")
    signal_languages: list[str] | None = Field(
        None,
        description="compute signals only for these languages (null signals for others; "
        "decide drops those as `signals_missing` if it keeps them). Default: every language",
    )
    decide: DecisionRules | None = Field(
        None, description="apply these thresholds in the same scan: writes drop_reasons and drop_reason"
    )
    minhash: SignatureConfig | None = Field(
        None,
        description="compute dedup's MinHash signature (column minhash) in the same scan; "
        "minhash_dedup with reuse_signatures and the same settings then skips its own text scan",
    )

    @field_validator("langid", mode="before")
    @classmethod
    def _langid_switch(cls, value: Any) -> Any:
        """`langid: true` / `false` keep working: the default backend / no language ID."""
        if value is True:
            return LangIdConfig()
        return None if value is False else value

    @model_validator(mode="after")
    def _signals_for_kept_languages(self) -> AnnotateConfig:
        if self.decide is None or not self.decide.presets or self.signal_languages is None:
            return self
        kept, scanned = self.decide.languages, self.signal_languages
        if kept is None or not set(kept) <= set(scanned):
            raise ValueError(
                f"signal_languages {scanned} must include every language decide keeps ({kept or 'any'}): "
                "the others would all be dropped as signals_missing"
            )
        return self

    def annotator(self, decontam: Any = None) -> Annotator:
        return Annotator(
            params=SignalParams(
                stop_words=tuple(self.stop_words),
                c4_min_words_per_line=self.c4_min_words_per_line,
                c4_max_word_length=self.c4_max_word_length,
                fineweb_short_line_length=self.fineweb_short_line_length,
            ),
            langid=self.langid,
            signals=self.signals,
            decontam=decontam,
            domains=DomainBlocklist.from_file(self.url_blocklist) if self.url_blocklist else None,
            words=WordBlocklist.from_file(self.word_blocklist) if self.word_blocklist else None,
            text_column=self.text_column,
            url_column=self.url_column,
            lang_column=None if self.langid is not None else "lang",
            signal_languages=frozenset(self.signal_languages) if self.signal_languages is not None else None,
        )


class Annotate(TableStage):
    """Language, quality signals, blocklist hits and benchmark n-gram hits: one fused scan per batch."""

    name = "annotate"
    Config = AnnotateConfig

    def __init__(self, config: AnnotateConfig, extra: list | None = None):
        super().__init__(config)
        self.extra = list(extra or [])

    def run(self, ctx: StageContext) -> StageResult:
        cfg: AnnotateConfig = self.config
        df = ctx.read(cfg.input)
        metrics: dict[str, Any] = {}
        decontam = None
        if cfg.benchmarks:
            index = DecontamIndex.build([b.spec() for b in cfg.benchmarks], cfg.ngram)
            decontam = ctx.spark.sparkContext.broadcast(index)
            metrics["benchmarks"] = index.stats
            metrics["benchmark_ngrams"] = len(index.ngrams)
        annotator = cfg.annotator(decontam)
        annotator.extra = self.extra
        if cfg.minhash is not None:
            kernel = SignatureKernel(cfg.minhash.signature_spec(), cfg.text_column)
            annotator.extra = [*self.extra, (kernel, [SIGNATURE_FIELD])]
        if cfg.decide is not None:
            annotator.rules = cfg.decide.rules([f.name for f in annotator.fields()])
            metrics["rule_order"] = reasons_in_order(annotator.rules)
        schema = annotator.output_schema(spark_to_arrow_schema(df))
        metrics["columns_added"] = [f.name for f in annotator.fields()]
        out = _nested_last(apply_kernel(df, annotator, schema))
        return StageResult(tables={cfg.output: out}, metrics=metrics)


# ------------------------------------------------------------------ decide
class DecisionRules(BaseModel):
    """The thresholds `decide` applies, on their own so that `annotate` can apply them in its scan."""

    model_config = ConfigDict(extra="forbid")

    presets: list[str] = Field(
        ["gopher", "c4", "fineweb"], description="gopher, gopher_quality, gopher_repetition, c4, fineweb"
    )
    thresholds: dict[str, float | int | bool | None] = Field(
        default_factory=dict, description="override a rule's threshold by reason name; null disables the rule"
    )
    languages: list[str] | None = Field(["en"], description="languages to keep (null: any language)")
    min_lang_score: float | None = Field(
        0.65, description="keep when lang_score is above this (null: no minimum)"
    )
    min_blocked_words: int = Field(1, ge=1, description="blocked_word_count at which word_blocklist fails")
    min_contamination_ngrams: int = Field(1, ge=1, description="matched n-grams at which contamination fails")

    @model_validator(mode="after")
    def _known_names(self) -> DecisionRules:
        try:
            preset_rules(self.presets, self.thresholds)
        except ValueError as exc:
            raise ValueError(f"presets/thresholds: {exc}") from None
        return self

    def rules(self, columns: list[str]) -> list:
        """Every rule in check order: language, blocklists, contamination, missing signals, then the presets."""
        rules = []
        if self.languages or self.min_lang_score is not None:
            rules += language_rules(self.languages, self.min_lang_score)
        if URL_BLOCKLIST.column in columns:
            rules.append(URL_BLOCKLIST)
        if WORD_BLOCKLIST.column in columns:
            rules.append(replace(WORD_BLOCKLIST, value=self.min_blocked_words))
        if CONTAMINATION.column in columns:
            rules.append(replace(CONTAMINATION, value=self.min_contamination_ngrams))
        presets = preset_rules(self.presets, self.thresholds)
        if presets:
            rules.append(SIGNALS_MISSING)
        return rules + presets


class DecideConfig(StageConfig, DecisionRules):
    input: str = Field("annotated", description="dataset table with annotation columns")
    output: str = Field("decided", description="dataset table written with drop_reason and drop_reasons")


class Decide(TableStage):
    """Apply every configured threshold: `drop_reasons` lists all failing rules, `drop_reason` the first."""

    name = "decide"
    Config = DecideConfig

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark.sql import functions as F

        cfg: DecideConfig = self.config
        df = ctx.read(cfg.input)
        rules = cfg.rules(df.columns)
        missing = sorted({r.column for r in rules} - set(df.columns))
        if missing:
            raise ValueError(
                f"table {cfg.input!r} lacks column(s) {missing} needed by decide's rules: run `annotate` "
                "(with langid and signals on) before `decide`, or remove those presets"
            )
        df = df.drop(DROP_REASONS) if DROP_REASONS in df.columns else df
        df = df.withColumn(DROP_REASONS, spark_failing(rules))
        out = _set_reason(df, F.try_element_at(F.col(DROP_REASONS), F.lit(1)))
        return StageResult(
            tables={cfg.output: _nested_last(out)}, metrics={"rule_order": reasons_in_order(rules)}
        )


# ------------------------------------------------------------------ decontaminate
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


class _MatchKernel:
    """Appends the decontamination columns from a broadcast index."""

    def __init__(self, index: Any, text_column: str):
        self.index = index
        self.text_column = text_column

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        index: DecontamIndex = getattr(self.index, "value", self.index)
        arrays = index.arrays(batch.column(self.text_column).to_pylist())
        return pa.RecordBatch.from_arrays(
            [*batch.columns, *arrays], names=batch.schema.names + [f.name for f in DECONTAM_FIELDS]
        )


class _HashKernel:
    """One row per (document id, n-gram hash): the probe side of the join mode."""

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
            kernel = _MatchKernel(ctx.spark.sparkContext.broadcast(index), cfg.text_column)
            out = apply_kernel(df, kernel, schema)
        else:
            out = self._join(ctx, df, index, cfg)
        hit = F.when(F.col("contamination_ngrams") >= cfg.min_matches, F.lit("contamination"))
        out = _set_reason(out, hit)
        metrics = {"mode": mode, "benchmark_ngrams": len(index.ngrams), "benchmarks": index.stats}
        return StageResult(tables={cfg.output: _nested_last(out)}, metrics=metrics)

    @staticmethod
    def _join(ctx: StageContext, df, index: DecontamIndex, cfg: DecontaminateConfig):
        """Shuffle-join document n-grams with the benchmark n-grams; per document keep the top benchmark."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if cfg.id_column not in df.columns:
            raise ValueError(f"join mode needs a unique id column; {cfg.id_column!r} is not in {cfg.input!r}")
        bench = ctx.spark.createDataFrame(index.table().to_pandas())
        probe = apply_kernel(
            df.select(cfg.id_column, cfg.text_column),
            _HashKernel(cfg.ngram, cfg.text_column, cfg.id_column),
            _HashKernel.schema,
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


# ------------------------------------------------------------------ quality classifier
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


class _ScoreKernel:
    def __init__(self, model: str, text_column: str):
        self.model, self.text_column = model, text_column

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        from curation.quality import score_texts

        scores = pa.array(score_texts(self.model, batch.column(self.text_column).to_pylist()), pa.float64())
        return pa.RecordBatch.from_arrays(
            [*batch.columns, scores], names=batch.schema.names + ["quality_score"]
        )


class QualityClassifier(TableStage):
    """Score every document with a fastText quality model; drop_reason "quality" below the cut."""

    name = "quality_classifier"
    Config = QualityClassifierConfig

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        cfg: QualityClassifierConfig = self.config
        df = _with_drop_reason(ctx.read(cfg.input).drop("quality_score"))
        schema = pa.schema(list(spark_to_arrow_schema(df)) + [pa.field("quality_score", pa.float64())])
        scored = apply_kernel(df, _ScoreKernel(str(Path(cfg.model).resolve()), cfg.text_column), schema)
        metrics: dict[str, Any] = {"model": cfg.model}
        cut = cfg.threshold
        if cfg.top_percentile is not None:
            scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
            kept = scored.where(F.col(DROP_REASON).isNull())
            quantiles = kept.approxQuantile(
                "quality_score", [1 - cfg.top_percentile / 100], cfg.relative_error
            )
            cut = quantiles[0] if quantiles else None
            metrics["top_percentile"] = cfg.top_percentile
        metrics["score_cut"] = cut
        if cut is not None:
            scored = _set_reason(scored, F.when(F.col("quality_score") < cut, F.lit("quality")))
        return StageResult(tables={cfg.output: _nested_last(scored)}, metrics=metrics)
