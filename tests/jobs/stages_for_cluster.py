"""A slow pass-through stage, so cluster tests can act in the middle of a running Spark job.

Referenced from specs by import path (`tests.jobs.stages_for_cluster:SleepPass`); it
runs on the executors, which is where a killed worker or a cancel must hit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult


class SleepConfig(StageConfig):
    input: str = "marked"
    output: str = "slept"
    seconds: float = 0.0
    # A shared folder where each task attempt leaves `started-*` and `finished-*` files, so a test can
    # prove a kill interrupted this stage's tasks (started, never finished) and count the retries.
    marker_dir: str | None = None


class SleepPass(Stage):
    """Copies its input unchanged after sleeping `seconds` in each Spark task."""

    name = "t_sleep"
    Config = SleepConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def run(self, ctx: StageContext) -> StageResult:
        seconds, markers = self.config.seconds, self.config.marker_dir

        def slow(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            attempt = _mark(markers, "started")
            time.sleep(seconds)
            yield from batches
            _mark(markers, "finished", attempt)

        df = ctx.read(self.config.input)
        return StageResult(tables={self.config.output: df.mapInArrow(slow, df.schema)})


def _mark(folder: str | None, event: str, attempt: str | None = None) -> str:
    """Leave `<event>-<attempt>` in `folder`; an attempt is partition, attempt number and task id."""
    from pyspark import TaskContext

    task = TaskContext.get()
    attempt = attempt or f"p{task.partitionId()}-a{task.attemptNumber()}-t{task.taskAttemptId()}"
    if folder:
        (Path(folder) / f"{event}-{attempt}").touch()
    return attempt
