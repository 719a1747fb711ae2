"""The `annotate` stage: the annotators a spec lists, in one fused scan of the text per batch.

```yaml
- stage: annotate
  params:
    annotators: [langid, gopher, {c4: {min_words_per_line: 3}}, fineweb, {url_filter: {path: urls.txt}}]
```
Each entry is an annotator name (defaults) or `{name: {its config}}`; the names are
the `refinery.annotators` entry points. Without `annotators`, today's default runs:
language ID and the Gopher, C4 and FineWeb signals. The stage only adds columns;
with `decide: {...}` it also applies decide's thresholds in the same scan
(docs/architecture.md, "Annotate, then decide").
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from curation.annotate.kernel import AnnotateKernel
from curation.annotators import DEFAULT_ANNOTATORS, build, resolve
from curation.decide import DecisionRules
from curation.langid.labels import check_label
from curation.rules import reasons_in_order
from curation.words import require_segmenters
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema
from pipelines.framework.stage import StageConfig, StageContext, StageResult, TableStage

# Settings of the annotate stage before annotators were listed, and where each went.
MOVED = {
    "langid": "annotators: [{langid: {...}}] (leave langid out of the list for none)",
    "signals": "annotators: [gopher, c4, fineweb]",
    "stop_words": "annotators: [{gopher: {stop_words: [...]}}]",
    "c4_min_words_per_line": "annotators: [{c4: {min_words_per_line: N}}]",
    "c4_max_word_length": "annotators: [{c4: {max_word_length: N}}]",
    "fineweb_short_line_length": "annotators: [{fineweb: {short_line_length: N}}]",
    "benchmarks": "annotators: [{decontam: {benchmarks: [...], ngram: N}}]",
    "ngram": "annotators: [{decontam: {benchmarks: [...], ngram: N}}]",
    "url_blocklist": "annotators: [{url_blocklist: {path: FILE}}]",
    "word_blocklist": "annotators: [{word_blocklist: {path: FILE}}]",
    "minhash": "annotators: [{minhash: {...}}]",
}


class AnnotateConfig(StageConfig):
    input: str = Field("documents", description="dataset table to annotate")
    output: str = Field("annotated", description="dataset table written (input columns + annotations)")
    text_column: str = "text"
    url_column: str = "uri"
    annotators: list[Any] = Field(
        default_factory=lambda: list(DEFAULT_ANNOTATORS),
        validate_default=True,
        description="annotator names or {name: {config}}, run in one scan (default: langid, gopher, c4, fineweb)",
    )
    signal_languages: list[str] | None = Field(
        None,
        description="compute language-scoped signals (gopher, c4, fineweb) only for these languages (null "
        "signals for others; decide drops those as `signals_missing` if it keeps them). Default: every language",
    )
    decide: DecisionRules | None = Field(
        None,
        description="apply these thresholds in the same scan: every failing rule, and the first as the reason",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_settings(cls, data: Any) -> Any:
        moved = sorted(set(data) & set(MOVED)) if isinstance(data, dict) else []
        if moved:
            raise ValueError("; ".join(f"{key} moved: use {MOVED[key]}" for key in moved))
        return data

    @field_validator("signal_languages")
    @classmethod
    def _known_languages(cls, languages: list[str] | None) -> list[str] | None:
        return None if languages is None else [check_label(code) for code in languages]

    @field_validator("annotators")
    @classmethod
    def _resolve(cls, value: list[Any]) -> list[dict[str, BaseModel]]:
        entries = [resolve(i, entry) for i, entry in enumerate(value)]
        names = [name for entry in entries for name in entry]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"annotators {twice} listed more than once (each adds its columns once)")
        return entries

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

    def require_segmenters(self) -> None:
        """Fail here, not in a worker on the first document of a language, where its segmenter is missing
        (also `refinery doctor --spec`): listed languages must also have their data (botok's dialect
        pack), unlisted ones only their packages."""
        require_segmenters(self.signal_languages, data=self.signal_languages is not None)

    def kernel(self) -> AnnotateKernel:
        """The fused kernel of the listed annotators (their files read, their indexes not yet built)."""
        languages = frozenset(self.signal_languages) if self.signal_languages is not None else None
        return AnnotateKernel(build(self.annotators), self.text_column, self.url_column, languages)


class Annotate(TableStage):
    """Every listed annotator's columns, one fused scan per batch (with decide's reasons, if asked)."""

    name = "annotate"
    Config = AnnotateConfig

    def run(self, ctx: StageContext) -> StageResult:
        cfg: AnnotateConfig = self.config
        cfg.require_segmenters()
        df = ctx.read(cfg.input)
        kernel = cfg.kernel()
        metrics: dict[str, Any] = {}
        for annotator in kernel.annotators:
            metrics.update(annotator.prepare(ctx.spark.sparkContext.broadcast))
        if cfg.decide is not None:
            kernel.rules = cfg.decide.rule_list([*df.columns, *(f.name for f in kernel.fields())])
            metrics["rule_order"] = reasons_in_order(kernel.rules)
        schema = kernel.output_schema(spark_to_arrow_schema(df))
        if cfg.decide is not None:
            cfg.decide.check_user_rules(schema, cfg.input)
        metrics["columns_added"] = [f.name for f in kernel.fields()]
        return StageResult(tables={cfg.output: apply_kernel(df, kernel, schema)}, metrics=metrics)
