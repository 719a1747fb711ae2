"""Row accounting: a stage that loses or invents rows fails the run instead of reporting success.

The scratch stages below are deliberately wrong; the runner, not the stage, must notice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from pyspark.sql import functions as F

from pipelines.framework.drop_reason import mark, register_reason
from pipelines.framework.runner import RowAccountingError, Runner
from pipelines.framework.runrecord import REASON_DESCRIPTIONS, RunRecord
from pipelines.framework.spec import parse_spec
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult

HERE = "tests.pipelines.test_row_accounting"
ROWS = 10
SCRATCH = register_reason("scratch", "two rows the Honest test stage marks")


class TenRows(Stage):
    """Writes ten documents (no input table, so nothing to reconcile)."""

    name = "t_ten"
    Config = StageConfig
    row_policy: ClassVar[str] = "none"

    def input_tables(self) -> list[str]:
        return []

    def output_tables(self) -> list[str]:
        return ["documents"]

    def run(self, ctx: StageContext) -> StageResult:
        df = ctx.spark.range(ROWS).select(
            F.col("id").cast("string").alias("doc_id"), F.lit("x").alias("text")
        )
        return StageResult(tables={"documents": df})


class _Scratch(Stage):
    Config = StageConfig

    def input_tables(self) -> list[str]:
        return ["documents"]

    def output_tables(self) -> list[str]:
        return ["out"]


class Honest(_Scratch):
    """Marks two rows dropped (annotates, keeps them): reconciles."""

    name = "t_honest"

    def run(self, ctx: StageContext) -> StageResult:
        marked = mark(ctx.read("documents"), F.col("doc_id").isin("0", "1"), SCRATCH)
        return StageResult(tables={"out": marked})


class LosesTwo(_Scratch):
    """Silently filters two of the ten rows away."""

    name = "t_loses"

    def run(self, ctx: StageContext) -> StageResult:
        return StageResult(tables={"out": ctx.read("documents").where(~F.col("doc_id").isin("0", "1"))})


class Invents(_Scratch):
    """Emits three rows that no input produced."""

    name = "t_invents"

    def run(self, ctx: StageContext) -> StageResult:
        docs = ctx.read("documents")
        return StageResult(tables={"out": docs.unionByName(docs.limit(3))})


class ExpandLoses(LosesTwo):
    """An augmentation-style stage (may add rows) that loses two."""

    name = "t_expand_loses"
    row_policy: ClassVar[str] = "expand"


def _run(spark, lake: Path, scratch: str) -> Runner:
    spec, stages = parse_spec(
        {
            "name": "acct",
            "lake": str(lake),
            "spark": {"master": "local[2]"},
            "stages": [{"stage": f"{HERE}:TenRows"}, {"stage": f"{HERE}:{scratch}"}],
        },
        "acct.yaml",
    )
    return Runner(spec, stages, spark=spark, progress=False)


def test_honest_stage_reconciles(spark, tmp_path):
    record = _run(spark, tmp_path / "lake", "Honest").run()
    stage = record.stages[1]
    assert record.status == "succeeded"
    assert (stage.rows_in, stage.kept, stage.dropped, stage.reconciled) == (ROWS, 8, {SCRATCH: 2}, True)


def test_run_record_says_what_each_counted_reason_means(spark, tmp_path):
    """Viewers that never import the stage read the reasons' lines from the record and stats.json."""
    record = _run(spark, tmp_path / "lake", "Honest").run()
    line = {SCRATCH: "two rows the Honest test stage marks"}
    assert record.stages[1].reason_descriptions == line
    assert RunRecord.load(tmp_path / "lake", record.run_id).stages[1].reason_descriptions == line
    stats = json.loads((record.path.parent / "stats.json").read_text())
    assert [s[REASON_DESCRIPTIONS] for s in stats["funnel"]] == [{}, line]


@pytest.mark.parametrize(("scratch", "rows_out"), [("LosesTwo", 8), ("Invents", 13), ("ExpandLoses", 8)])
def test_stage_that_loses_or_invents_rows_fails_the_run(spark, tmp_path, scratch, rows_out):
    runner = _run(spark, tmp_path / "lake", scratch)
    with pytest.raises(RowAccountingError, match="lost or invented rows"):
        runner.run()
    saved = RunRecord.load(tmp_path / "lake", runner.record.run_id)
    stage = saved.stages[1]
    assert saved.status == "failed" and saved.error.startswith("RowAccountingError")
    assert stage.status == "failed" and stage.reconciled is False
    assert (stage.rows_in, stage.rows_out["out"]) == (ROWS, rows_out)
