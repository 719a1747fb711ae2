"""User rules evaluate alike in Spark and in Arrow: every supported construct, on a real table, row for row.

The table goes through the lake and back into Spark, so each side reads the same column
types; the Spark side runs the SQL written back from the parsed tree (what `decide` runs),
the Arrow side `curation.expressions.arrow.evaluate` (what annotate's fused scan runs).
Values are compared, not just the drop decision, so a null on one side and false on the
other is a failure too.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from curation.expressions import UserRule
from curation.expressions.arrow import evaluate, java_text
from curation.expressions.parse import parse
from curation.expressions.tree import ExpressionError, check
from pipelines.ingest.readers.base import meta_json

METAS = [
    {"suffix": ".pdf", "star": 50, "lang": "de", "path": {"test": ["txt", "json"]}},
    {"suffix": ".docx", "star": 6, "nested": {"a": {"b": 1.5e-5}}, "big": 12345678901234567890},
    {"suffix": ".txt", "star": 100, "note": 'Grüße\n"quoted"', "ratio": 1e20, "flag": True},
    {"suffix": "", "star": 12.51, "star_text": "13.5", "list": [1, 2.0, None, "z"]},
    {"suffix": None, "star_text": "asdkc", "count": "36", "neg": "-7", "spaced": " 12\t"},
    {"star_text": "1e3", "count": "9999999999999", "bool_text": "yes", "float_text": "5d"},
    {},
]
TEXTS = [
    "Today is Sun",
    "a v s e c s f e f g a a a  ",
    "中文也是一个字算一个长度",
    "  padded  ",
    "ß and İ",
    "line\nbreak_x%",
    None,
]


def _table() -> pa.Table:
    n = len(METAS)
    return pa.table(
        {
            "id": list(range(n)),
            "text": TEXTS,
            "meta": [meta_json(m) for m in METAS],
            "num": pa.array([5, 15, 25, None, 0, -3, 2**40], pa.int64()),
            "small": pa.array([1, None, 3, 4, 5, 6, 7], pa.int32()),
            "score": pa.array([0.5, 1.25, None, -0.0, 3.0, 1e-4, 2.5e7], pa.float64()),
            "flag": pa.array([True, False, None, True, False, True, None]),
            "lang": ["en", "de", None, "en", "fr", "en", "zh"],
        }
    )


CASES = [
    "num < 10",
    "10 < num AND num < 20",
    "num <= 5 OR num IS NULL",
    "num = 15",
    "num <> 15",
    "num != 15",
    "num == 15",
    "num >= score",
    "small > 2.5",
    "NOT flag",
    "flag = TRUE",
    "flag AND num > 0",
    "flag OR num > 0",
    "NOT (flag OR num > 0)",
    "num IN (5, 25)",
    "num IN (5, NULL)",
    "num NOT IN (5, NULL)",
    "lang IN ('en', 'de')",
    "lang NOT IN ('en')",
    "num BETWEEN 0 AND 20",
    "score NOT BETWEEN 0 AND 2",
    "num IS NULL",
    "text IS NOT NULL",
    "text LIKE 'T%'",
    "text LIKE '%a _'",
    "text LIKE '%break\\_x\\%'",
    "text LIKE 'line%x%'",
    "text NOT LIKE '%a%'",
    "num + small > 20",
    "num - small * 2 < 0",
    "num / small > 4",
    "score / num > 0",
    "-num > 0",
    "num * 1.5 = 22.5",
    "length(text) > 10",
    "length(text) = 12",
    "lower(text) = 'today is sun'",
    "upper(text) = 'SS AND İ'",
    "lower(text) LIKE '%i̇%'",
    "trim(text) = 'padded'",
    "length(trim(text)) <> length(text)",
    "coalesce(num, small, 0) > 4",
    "coalesce(lang, 'none') = 'none'",
    "coalesce(score, num) > 1",
    "get_json_object(meta, '$.suffix') IN ('.txt', '.pdf')",
    "get_json_object(meta, '$.suffix') = ''",
    "get_json_object(meta, '$.suffix') IS NULL",
    "get_json_object(meta, '$.star') = '12.51'",
    "get_json_object(meta, '$.path.test') = '[\"txt\",\"json\"]'",
    "get_json_object(meta, '$.path.test[1]') = 'json'",
    "get_json_object(meta, '$.nested') = '{\"a\":{\"b\":1.5E-5}}'",
    "get_json_object(meta, '$.nested.a.b') = '1.5E-5'",
    "get_json_object(meta, '$.big') = '12345678901234567890'",
    "get_json_object(meta, '$.ratio') = '1.0E20'",
    "get_json_object(meta, '$.note') = 'Grüße\n\"quoted\"'",
    "get_json_object(meta, '$.list') = '[1,2.0,null,\"z\"]'",
    "get_json_object(meta, '$.list[2]') = 'null'",
    "get_json_object(meta, '$.flag') = 'true'",
    "get_json_object(meta, '$.lang') = 'de' AND num < 200",
    "get_json_object(text, '$.a') IS NULL",
    "TRY_CAST(get_json_object(meta, '$.star') AS DOUBLE) BETWEEN 10 AND 70",
    "TRY_CAST(get_json_object(meta, '$.star_text') AS DOUBLE) > 10",
    "TRY_CAST(get_json_object(meta, '$.star_text') AS INT) > 10",
    "TRY_CAST(get_json_object(meta, '$.count') AS INT) > 10",
    "TRY_CAST(get_json_object(meta, '$.count') AS BIGINT) > 10",
    "TRY_CAST(get_json_object(meta, '$.neg') AS BIGINT) < 0",
    "TRY_CAST(get_json_object(meta, '$.spaced') AS INT) = 12",
    "TRY_CAST(get_json_object(meta, '$.float_text') AS DOUBLE) = 5",
    "TRY_CAST(get_json_object(meta, '$.bool_text') AS BOOLEAN)",
    "TRY_CAST(score AS INT) = 3",
    "TRY_CAST(num AS INT) IS NULL",
    "TRY_CAST(num AS STRING) = '15'",
    "TRY_CAST(score AS STRING) IN ('0.5', '1.0E-4', '2.5E7', '-0.0')",
    "TRY_CAST(flag AS STRING) = 'true'",
    "num = NULL",
    "NULL = NULL",
    "NULL + NULL > 0",
    "-NULL > 1",
    "NULL IN (1, 2)",
    "NOT NULL",
    "NULL",
    "TRUE",
    "(num < 10 OR num > 20) AND flag = TRUE AND text != 'sample3'",
]


@pytest.fixture(scope="module")
def both(spark, tmp_path_factory):
    """(Spark's values, Arrow's values) per case, over the same table read back from the lake."""
    from pipelines.framework.lake import Lake

    lake = Lake(tmp_path_factory.mktemp("lake"))
    lake.write_arrow(_table(), "rules/table")
    table = lake.dataset("rules/table").to_table().sort_by("id")
    expressions = [parse(case) for case in CASES]
    for expression in expressions:
        check(expression, table.schema)
    columns = [f"{e.spark_sql} AS c{i}" for i, e in enumerate(expressions)]
    rows = lake.read(spark, "rules/table").orderBy("id").selectExpr(*columns).collect()
    spark_values = [[row[f"c{i}"] for row in rows] for i in range(len(expressions))]
    arrow_values = [evaluate(e.tree, table).to_pylist() for e in expressions]
    return spark_values, arrow_values


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASES)
def test_spark_and_arrow_agree(both, index):
    spark_values, arrow_values = both
    assert arrow_values[index] == spark_values[index], CASES[index]


def test_cases_are_not_trivial(both):
    """Each side's results hold trues, falses and nulls overall: the comparison above can fail."""
    _, arrow_values = both
    seen = {v for values in arrow_values for v in values}
    assert seen == {True, False, None}
    assert sum(any(values) and not all(values) for values in arrow_values) > len(CASES) // 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("invalid syntax", "not supported"),
        ("num < ", "not valid Spark SQL"),
        ("CAST(num AS INT) > 1", "use TRY_CAST"),
        ("num % 2 = 1", "not supported"),
        ("regexp_like(text, 'a')", "not supported"),
        ("num IN (small)", "IN lists literals only"),
        ("get_json_object(meta, '$.a[*]') = 'x'", r"only \$.key and \[index\]"),
        ("t.num > 1", "without a prefix"),
        ("num > 1; num < 2", "one expression"),
        ("", "empty"),
    ],
)
def test_unsupported_constructs_are_refused_at_parse(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("get_json_object(meta, '$.star') > 10", "mixes number and string"),
        ("num = 'x'", "mixes number and string"),
        ("missing > 1", "no column 'missing'"),
        ("num + 1", "computes a number, not a condition"),
        ("lower(num) = 'a'", "lower needs a string"),
        ("flag AND num", "AND needs a boolean"),
        ("TRY_CAST(num AS BOOLEAN)", "needs a string"),
    ],
)
def test_kinds_are_checked_against_the_schema(text, message):
    with pytest.raises(ExpressionError, match=message):
        check(parse(text), _table().schema)


def test_rule_errors_name_the_rule():
    with pytest.raises(ValueError, match="rule 'by_star'.*TRY_CAST"):
        UserRule(name="by_star", drop_if="CAST(num AS INT) > 1")
    with pytest.raises(ValueError, match="lower-case letters"):
        UserRule(name="Bad Name", drop_if="num > 1")


def test_java_text_prints_doubles_as_spark():
    assert [java_text(v) for v in (2.0, 12.51, 1e20, 1.5e-5, 0.001, 1e7, -0.0, 123456.789)] == [
        "2.0",
        "12.51",
        "1.0E20",
        "1.5E-5",
        "0.001",
        "1.0E7",
        "-0.0",
        "123456.789",
    ]
    assert json.loads(meta_json({"a": 1})) == {"a": 1}
