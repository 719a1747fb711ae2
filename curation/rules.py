"""Thresholds over signal columns: the presets and the order in which `decide` checks them.

A rule is data (reason, column, comparison, threshold), so one list drives both
the Spark evaluator (JVM expressions, no Python on the hot path) and the Arrow
evaluator used by tests and single-machine tools. The presets reproduce the
published filters' settings (datatrove 0.10.1 defaults); reasons are datatrove's
names with the preset as prefix (`gopher_short_doc`, `c4_lorem_ipsum`,
`fineweb_line_punct_ratio`). A rule over a null signal never fails: null means
"not measurable" (an empty document fails the explicit `*_empty` rules instead).
A user rule (`op="expr"`, curation/expressions/__init__.py) carries a parsed expression instead of a
column and threshold; the same two evaluators run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from curation.expressions.arrow import evaluate
from curation.expressions.tree import Expression, check
from pipelines.framework.drop_reason import register_reason

Op = Literal["lt", "gt", "le", "ge", "eq", "true", "not_in", "null", "expr"]
DROP_REASONS = "drop_reasons"


LANG_COLUMN = "lang"


@dataclass(frozen=True)
class ByLanguage:
    """A threshold that follows the row's `lang`: `values` for the languages listed, `default` for the
    others and for a null `lang` (per-language presets, curation/thresholds)."""

    default: Any
    values: tuple[tuple[str, Any], ...]

    def for_languages(self, langs: Sequence[str | None]) -> list[Any]:
        lookup = dict(self.values)
        return [lookup.get(lang, self.default) if lang is not None else self.default for lang in langs]


@dataclass(frozen=True)
class Rule:
    """Fail when `column <op> value`; a null column value never fails (except `not_in`: null is not
    in, and `null`, which fails exactly on nulls). An `expr` rule fails where its expression (the value)
    is true; its `column` is empty."""

    reason: str
    column: str
    op: Op
    value: Any = None

    @property
    def columns(self) -> frozenset[str]:
        """The columns the rule reads."""
        if self.op == "expr":
            return self.value.columns
        if isinstance(self.value, ByLanguage):
            return frozenset([self.column, LANG_COLUMN])
        return frozenset([self.column])


def expression_rule(reason: str, expression: Expression) -> Rule:
    """The rule for a user rule's parsed expression (true = fail)."""
    return Rule(reason, "", "expr", expression)


# The presets and the blocklist/contamination rules live with their annotators (curation/annotators).
LANGUAGE = register_reason(
    "language", "the language is not one decide keeps, or its score is at or below min_lang_score"
)
# Signals are null for languages annotate was told to skip (`signal_languages`). Null never fails a
# preset rule, so a kept language without signals would pass every preset unchecked: this rule drops
# such rows instead, and names the misconfiguration.
SIGNALS_MISSING = Rule(
    register_reason(
        "signals_missing",
        "a kept language annotate computed no signals for (see annotate's signal_languages)",
    ),
    "char_count",
    "null",
)


def language_rules(languages: Sequence[str] | None, min_score: float | None) -> list[Rule]:
    """Keep a document when its language is listed and its score is above `min_score` (as datatrove)."""
    rules = []
    if languages:
        rules.append(Rule(LANGUAGE, "lang", "not_in", tuple(languages)))
    if min_score is not None:
        rules.append(Rule(LANGUAGE, "lang_score", "le", min_score))
        rules.append(Rule(LANGUAGE, "lang", "not_in", None))
    return rules


def reasons_in_order(rules: Sequence[Rule]) -> list[str]:
    """Distinct reasons in check order (several rules may share one reason, e.g. `language`)."""
    return list(dict.fromkeys(rule.reason for rule in rules))


# ---------------------------------------------------------------- Spark
def spark_condition(rule: Rule):
    """A Spark boolean Column, true where `rule` fails (never null)."""
    from pyspark.sql import functions as F

    if rule.op == "expr":
        return F.coalesce(F.expr(rule.value.spark_sql), F.lit(False))
    col = F.col(rule.column)
    if rule.op == "null":
        return col.isNull()
    if rule.op == "not_in":
        if rule.value is None:
            return col.isNull()
        return col.isNull() | ~col.isin(list(rule.value))
    value = _spark_value(rule.value)
    cond = {
        "lt": lambda: col < value,
        "gt": lambda: col > value,
        "le": lambda: col <= value,
        "ge": lambda: col >= value,
        "eq": lambda: col == value,
        "true": lambda: col,
    }[rule.op]()
    return F.coalesce(cond, F.lit(False))


def _spark_value(value: Any):
    """A threshold as Spark sees it: a literal, or a CASE over `lang` for a per-language one."""
    from pyspark.sql import functions as F

    if not isinstance(value, ByLanguage):
        return value
    lang = F.col(LANG_COLUMN)
    case = None
    for code, v in value.values:
        case = F.when(lang == code, F.lit(v)) if case is None else case.when(lang == code, F.lit(v))
    return case.otherwise(F.lit(value.default)) if case is not None else F.lit(value.default)


def spark_failing(rules: Sequence[Rule]):
    """An array<string> Column of every failing reason, in rule order, each once."""
    from pyspark.sql import functions as F

    if not rules:
        return F.array().cast("array<string>")
    by_reason: dict[str, Any] = {}
    for rule in rules:
        cond = spark_condition(rule)
        by_reason[rule.reason] = cond if rule.reason not in by_reason else by_reason[rule.reason] | cond
    flags = [F.when(cond, F.lit(reason)) for reason, cond in by_reason.items()]
    return F.filter(F.array(*flags), lambda x: x.isNotNull())


# ---------------------------------------------------------------- Arrow
def arrow_condition(table: pa.Table | pa.RecordBatch, rule: Rule) -> pa.ChunkedArray | pa.Array:
    """An Arrow boolean array, true where `rule` fails (never null)."""
    if rule.op == "expr":
        check(rule.value, table.schema)
        return pc.fill_null(evaluate(rule.value.tree, table), False)
    col = table.column(rule.column)
    if rule.op == "null":
        return pc.is_null(col)
    if rule.op == "not_in":
        missing = pc.is_null(col)
        if rule.value is None:
            return missing
        return pc.or_(missing, pc.invert(pc.fill_null(pc.is_in(col, pa.array(list(rule.value))), False)))
    fn = {
        "lt": pc.less,
        "gt": pc.greater,
        "le": pc.less_equal,
        "ge": pc.greater_equal,
        "eq": pc.equal,
    }
    cond = col if rule.op == "true" else fn[rule.op](col, _arrow_value(table, rule.value))
    return pc.fill_null(cond, False)


def _arrow_value(table: pa.Table | pa.RecordBatch, value: Any):
    """A threshold as Arrow compares it: a scalar, or one value per row from `lang` for a per-language one."""
    if not isinstance(value, ByLanguage):
        return value
    return pa.array(value.for_languages(table.column(LANG_COLUMN).to_pylist()), pa.float64())


def arrow_failing(table: pa.Table | pa.RecordBatch, rules: Sequence[Rule]) -> list[list[str]]:
    """Per row, every failing reason in rule order (driver-side: for tests and small tables)."""
    flags: dict[str, list[bool]] = {}
    for rule in rules:
        cond = arrow_condition(table, rule).to_pylist()
        prev = flags.get(rule.reason)
        flags[rule.reason] = cond if prev is None else [a or b for a, b in zip(prev, cond, strict=True)]
    return [[reason for reason, col in flags.items() if col[i]] for i in range(table.num_rows)]
