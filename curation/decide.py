"""The `decide` stage: annotation columns -> `drop_reasons` (every failing rule) and `drop_reason` (the first).

`annotate` only adds columns; `decide` turns them into reasons with thresholds that can
change and be applied again without a rescan (docs/architecture.md, "Annotate, then
decide"). `DecisionRules` stands on its own so that annotate can apply the same rules in
its scan. Rows in = rows out, and a reason an earlier stage set is never replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.annotators import column_rules, preset_reasons, preset_rules
from curation.expressions import UserRule
from curation.expressions.tree import ExpressionError, check
from curation.langid.labels import check_label
from curation.rules import (
    DROP_REASONS,
    LANG_COLUMN,
    SIGNALS_MISSING,
    Rule,
    expression_rule,
    language_rules,
    reasons_in_order,
    spark_failing,
)
from curation.thresholds import DEFAULT_TABLE, by_language, language_table
from pipelines.framework.arrow_kernel import spark_to_arrow_schema
from pipelines.framework.drop_reason import DROP_REASON, mark_with
from pipelines.framework.stage import StageConfig, StageContext, StageResult, TableStage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class DecisionRules(BaseModel):
    """The thresholds and user rules `decide` applies, on their own so that `annotate` can apply them in its scan."""

    model_config = ConfigDict(extra="forbid")

    presets: list[str] = Field(
        ["gopher", "c4", "fineweb"], description="gopher, gopher_quality, gopher_repetition, c4, fineweb"
    )
    thresholds: dict[str, float | int | bool | None] = Field(
        default_factory=dict, description="override a rule's threshold by reason name; null disables the rule"
    )
    language_thresholds: str | None = Field(
        DEFAULT_TABLE,
        description="per-language preset thresholds: a packaged table (fineweb2) or a YAML file; the row's "
        "`lang` picks its numbers, unlisted languages get the presets' own; `thresholds` overrides win for "
        "every language; null: the presets' numbers for every language",
    )
    languages: list[str] | None = Field(["en"], description="languages to keep (null: any language)")
    min_lang_score: float | None = Field(
        0.65, description="keep when lang_score is above this (null: no minimum)"
    )
    min_blocked_words: int = Field(1, ge=1, description="blocked_word_count at which word_blocklist fails")
    min_contamination_ngrams: int = Field(1, ge=1, description="matched n-grams at which contamination fails")
    rules: list[UserRule] = Field(
        default_factory=list,
        description="user rules, checked first: [{name, drop_if}], `drop_if` a boolean Spark SQL expression "
        "over any column (docs/curation.md, 'User rules'); `name` is the drop reason",
    )

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, languages: list[str] | None) -> list[str] | None:
        return None if languages is None else [check_label(code) for code in languages]

    @model_validator(mode="after")
    def _known_names(self) -> DecisionRules:
        try:
            preset_rules(self.presets, self.thresholds)
        except ValueError as exc:
            raise ValueError(f"presets/thresholds: {exc}") from None
        if self.language_thresholds is not None:
            try:
                language_table(self.language_thresholds).check_reasons(
                    preset_reasons(), self.language_thresholds
                )
            except ValueError as exc:
                raise ValueError(f"language_thresholds: {exc}") from None
        names = [rule.name for rule in self.rules]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"rules: the name(s) {twice} are used twice; a rule's name is its drop reason")
        for rule in self.rules:
            try:
                rule.register()
            except ValueError as exc:
                raise ValueError(f"rules: rule {rule.name!r}: {exc}; name the rule differently") from None
        return self

    def user_rules(self) -> list[Rule]:
        return [expression_rule(rule.name, rule.expression()) for rule in self.rules]

    def check_user_rules(self, schema: pa.Schema, table: str) -> None:
        """Fail before the scan, naming the rule, when a user rule reads a column `schema` lacks or
        compares values of unlike kinds (the workers would otherwise fail on their first batch)."""
        for rule in self.user_rules():
            try:
                check(rule.value, schema)
            except ExpressionError as exc:
                raise ValueError(f"decide: rule {rule.reason!r} on table {table!r}: {exc}") from None

    def rule_list(self, columns: list[str]) -> list[Rule]:
        """Every rule in check order: user rules, language, the annotators' column rules present in `columns`
        (blocklists, contamination), missing signals, the presets (per language where `columns` has `lang`)."""
        rules = self.user_rules()
        if self.languages or self.min_lang_score is not None:
            rules += language_rules(self.languages, self.min_lang_score)
        thresholds = {
            "word_blocklist": self.min_blocked_words,
            "contamination": self.min_contamination_ngrams,
        }
        rules += column_rules(columns, thresholds)
        presets = preset_rules(self.presets, self.thresholds)
        if presets:
            rules.append(SIGNALS_MISSING)
        if self.language_thresholds is not None and LANG_COLUMN in columns:
            presets = by_language(presets, language_table(self.language_thresholds), keep=self.thresholds)
        return rules + presets


class DecideConfig(StageConfig, DecisionRules):
    input: str = Field("annotated", description="dataset table with annotation columns")
    output: str = Field("decided", description=f"dataset table written with {DROP_REASON} and {DROP_REASONS}")


class Decide(TableStage):
    """Apply every configured rule: `drop_reasons` lists all failing rules, `drop_reason` the first."""

    name = "decide"
    Config = DecideConfig

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark.sql import functions as F

        cfg: DecideConfig = self.config
        df = ctx.read(cfg.input)
        rules = cfg.rule_list(df.columns)
        _check_columns(df, rules, cfg.input)
        cfg.check_user_rules(spark_to_arrow_schema(df), cfg.input)
        df = df.drop(DROP_REASONS) if DROP_REASONS in df.columns else df
        df = df.withColumn(DROP_REASONS, spark_failing(rules))
        out = mark_with(df, F.try_element_at(F.col(DROP_REASONS), F.lit(1)))
        return StageResult(tables={cfg.output: out}, metrics={"rule_order": reasons_in_order(rules)})


def _check_columns(df: DataFrame, rules: list[Rule], table: str) -> None:
    """Fail before the scan when a threshold reads a column the table lacks (user rules check their own)."""
    needed = [rule.column for rule in rules if rule.op != "expr"]
    missing = sorted(set(needed) - set(df.columns))
    if missing:
        raise ValueError(
            f"table {table!r} lacks column(s) {missing} needed by decide's rules: run `annotate` with the "
            "annotators that add them before `decide` (lang*: langid; char_count, which tells rows without "
            "signals: gopher; each preset: its own annotator), or remove those presets"
        )
