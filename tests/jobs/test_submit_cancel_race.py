"""A run whose stage fails while a cancel is under way ends `cancelled`, with a short error.

Why: `refinery cancel` leaves the cancel marker, then stops the driver and asks the master to kill
the application; the driver's Spark job then fails with a Py4JJavaError ("Master removed our
application: KILLED") whose ~150 lines of JVM stack ended up in the record's `error`, as a
`failed` run. Here a stage leaves the marker and then has a real Spark job fail (a task raising on
the executor side), the same shape of error arriving the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.framework.runner import Runner, informative_lines
from pipelines.framework.runrecord import CANCEL_FILE, RunCancelled, RunRecord
from pipelines.framework.spec import parse_spec
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult

KILLED = "Master removed our application: KILLED"


class FailConfig(StageConfig):
    output: str = "never"
    cancel_first: bool = True


class FailWhileCancelled(Stage):
    """Leaves the run's cancel marker (as `refinery cancel` does), then runs a Spark job that fails."""

    name = "t_fail_while_cancelled"
    Config = FailConfig
    row_policy = "none"

    def input_tables(self) -> list[str]:
        return []

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def run(self, ctx: StageContext) -> StageResult:
        if self.config.cancel_first:
            (RunRecord.load(str(ctx.lake.root), ctx.run_id).path.parent / CANCEL_FILE).write_text("now")

        def killed(_: int) -> int:
            raise RuntimeError(KILLED)

        ctx.spark.sparkContext.parallelize([0], 1).map(killed).collect()
        raise AssertionError("the Spark job above always fails")


def _runner(lake: Path, spark, cancel_first: bool) -> Runner:
    stage = f"{__name__}:FailWhileCancelled"
    spec = {
        "name": "cancel-race",
        "lake": str(lake),
        "stages": [{"stage": stage, "params": {"cancel_first": cancel_first}}],
    }
    parsed, stages = parse_spec(spec)
    return Runner(parsed, stages, run_id="race", spark=spark, progress=False)


def test_a_failure_under_a_cancel_ends_cancelled_with_a_short_error(spark, tmp_path: Path) -> None:
    with pytest.raises(RunCancelled):
        _runner(tmp_path / "lake", spark, cancel_first=True).run()
    record = RunRecord.load(str(tmp_path / "lake"), "race")
    assert record.status == "cancelled" and record.ended_at, (record.status, record.error)
    assert "\n" not in record.error and record.error.startswith("cancelled by the user"), record.error
    assert "Py4JJavaError" in record.error, record.error
    # The cause keeps what the long Java error says happened, not its stack frames.
    cause = record.error_cause or ""
    assert KILLED in cause and 1 < len(cause.splitlines()) <= 8, cause
    assert not any(line.startswith(("at ", "File ")) for line in cause.splitlines()), cause
    assert record.stages[0].status == "failed" and record.stages[0].error == "cancelled"


def test_the_same_failure_without_a_cancel_stays_failed(spark, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=KILLED):
        _runner(tmp_path / "lake", spark, cancel_first=False).run()
    record = RunRecord.load(str(tmp_path / "lake"), "race")
    assert record.status == "failed" and KILLED in record.error
    assert (record.path.parent / "error.txt").is_file()


def test_informative_lines_drop_stack_frames() -> None:
    text = (
        "An error occurred while calling o71.collectToPython.\n"
        ": org.apache.spark.SparkException: Job 3 cancelled because SparkContext was shut down\n"
        "\tat org.apache.spark.scheduler.DAGScheduler.$anonfun$cleanUpAfterSchedulerStop$1(DAGScheduler.scala:1259)\n"
        "\tat scala.collection.mutable.HashSet.foreach(HashSet.scala:79)\n"
        "Caused by: org.apache.spark.SparkException: Master removed our application: KILLED\n"
        "\t... 42 more\n"
    )
    assert informative_lines(text).splitlines() == [
        "An error occurred while calling o71.collectToPython.",
        ": org.apache.spark.SparkException: Job 3 cancelled because SparkContext was shut down",
        "Caused by: org.apache.spark.SparkException: Master removed our application: KILLED",
    ]
