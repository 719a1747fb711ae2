"""A slow pass-through stage, so cluster tests can act in the middle of a running Spark job.

Referenced from specs by import path (`tests.jobs.stages_for_cluster:SleepPass`); it
runs on the executors, which is where a killed worker or a cancel must hit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyarrow as pa

from pipelines.stage import Stage, StageConfig, StageContext, StageResult


class SleepConfig(StageConfig):
    input: str = "marked"
    output: str = "slept"
    seconds: float = 0.0


class SleepPass(Stage):
    """Copies its input unchanged after sleeping `seconds` in each Spark task."""

    name = "t_sleep"
    Config = SleepConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return [self.config.output]

    def run(self, ctx: StageContext) -> StageResult:
        seconds = self.config.seconds

        def slow(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            time.sleep(seconds)
            yield from batches

        df = ctx.read(self.config.input)
        return StageResult(tables={self.config.output: df.mapInArrow(slow, df.schema)})
