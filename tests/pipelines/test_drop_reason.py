"""The drop_reason rule in both its forms: first reason wins, a null condition never drops, the registry."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import functions as F

from pipelines.framework.drop_reason import (
    DROP_REASON,
    FIELD,
    arrow_first,
    arrow_kept,
    arrow_mark,
    arrow_reasons,
    describe,
    descriptions,
    kept,
    mark,
    mark_with,
    register_reason,
    with_arrow_reasons,
    with_drop_reason,
)

SHORT = register_reason("t_short", "test: fewer than three words")
ODD = register_reason("t_odd", "test: an odd id")
# id, words (None: unknown), an earlier stage's reason
ROWS = [(0, 1, None), (1, 5, None), (2, None, None), (3, 2, "t_earlier"), (4, 2, None), (5, None, None)]


def _frame(spark):
    return spark.createDataFrame(ROWS, f"id long, words int, {DROP_REASON} string").orderBy("id")


def _reasons(df) -> list[str | None]:
    return [row[DROP_REASON] for row in df.orderBy("id").collect()]


# The marks below, applied in order: short first, then odd. Row 2 has no word count (null
# condition: kept by `short`, marked by `odd`); row 3 keeps the earlier stage's reason.
EXPECTED = [SHORT, ODD, None, "t_earlier", SHORT, ODD]


def test_spark_mark_first_reason_wins_and_null_condition_never_drops(spark):
    df = mark(_frame(spark), F.col("words") < 3, SHORT)
    df = mark(df, F.col("id") % 2 == 1, ODD)
    assert _reasons(df) == EXPECTED
    assert df.where(kept(df)).count() == 1


def test_arrow_mark_gives_the_spark_result():
    batch = pa.RecordBatch.from_pylist(
        [dict(zip(("id", "words", DROP_REASON), row, strict=True)) for row in ROWS],
        schema=pa.schema([("id", pa.int64()), ("words", pa.int32()), FIELD]),
    )
    short = pc.less(batch.column("words"), 3)
    batch = with_arrow_reasons(batch, arrow_mark(batch, short, SHORT))
    odd = pc.equal(pc.bit_wise_and(batch.column("id"), 1), 1)
    batch = with_arrow_reasons(batch, arrow_mark(batch, odd, ODD))
    assert batch.column(DROP_REASON).to_pylist() == EXPECTED
    assert arrow_kept(batch).to_pylist() == [False, False, True, False, False, False]


def test_spark_mark_with_fills_only_rows_still_kept(spark):
    df = _frame(spark).withColumn("why", F.when(F.col("id") >= 3, F.concat(F.lit("t_n"), "id")))
    assert _reasons(mark_with(df, F.col("why"))) == [None, None, None, "t_earlier", "t_n4", "t_n5"]


def test_spark_forms_on_a_table_without_the_column(spark):
    df = spark.range(3)
    assert df.where(kept(df)).count() == 3
    marked = mark(df, F.col("id") == 1, SHORT)
    assert dict(marked.dtypes)[DROP_REASON] == "string"
    assert [r[DROP_REASON] for r in marked.orderBy("id").collect()] == [None, SHORT, None]
    assert with_drop_reason(marked) is marked


def test_arrow_reasons_on_a_batch_without_the_column():
    batch = pa.RecordBatch.from_pydict({"id": [1, 2, 3]})
    assert arrow_reasons(batch).to_pylist() == [None, None, None]
    reasons = arrow_first(batch, pa.array([None, ODD, None]))
    appended = with_arrow_reasons(batch, reasons)
    assert appended.schema.names == ["id", DROP_REASON]
    assert appended.schema.field(DROP_REASON) == FIELD
    assert appended.column(DROP_REASON).to_pylist() == [None, ODD, None]


def test_with_arrow_reasons_replaces_the_column_in_place():
    batch = pa.RecordBatch.from_pydict(
        {"id": [1, 2], DROP_REASON: pa.array([None, "t_earlier"], pa.large_string()), "text": ["a", "b"]}
    )
    replaced = with_arrow_reasons(batch, arrow_mark(batch, pa.array([True, True]), SHORT))
    assert replaced.schema.names == ["id", DROP_REASON, "text"]
    assert replaced.schema.field(DROP_REASON) == FIELD
    assert replaced.column(DROP_REASON).to_pylist() == [SHORT, "t_earlier"]
    assert arrow_mark(batch, pa.array([None, None], pa.bool_()), ODD).to_pylist() == [None, "t_earlier"]


def test_registry_keeps_one_line_per_reason():
    assert describe(SHORT) == "test: fewer than three words"
    assert describe("t_never_registered") is None
    assert descriptions([SHORT, "t_never_registered", ODD]) == {
        SHORT: "test: fewer than three words",
        ODD: "test: an odd id",
    }
    assert register_reason(SHORT, "test: fewer than three words") == SHORT  # the same line again is fine


def test_registering_a_reason_with_another_meaning_raises():
    with pytest.raises(ValueError, match="'t_short' is already registered as 'test: fewer than three words'"):
        register_reason(SHORT, "test: something else")
    assert describe(SHORT) == "test: fewer than three words"
