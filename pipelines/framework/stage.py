"""The stage contract: a named step with a validated config, input tables and output tables.

A stage never writes tables itself: it returns DataFrames and the runner commits
them (so commit metadata, resume keys and row accounting live in one place).
Per-document work belongs in kernels (`pa.RecordBatch -> pa.RecordBatch`, no
Spark import) that a stage applies with `mapInArrow` (see `apply_kernel`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from pipelines.framework.lake import Lake


class StageConfig(BaseModel):
    """Base of every stage's parameters: unknown keys are errors, so typos never pass silently.

    `input` and `output` name tables inside the job's dataset; each stage sets its
    own defaults so that the demo job needs no table names at all.
    """

    model_config = ConfigDict(extra="forbid")

    def config_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class StageContext:
    """What a running stage may use. Table names passed here are relative to the dataset."""

    spark: SparkSession
    lake: Lake
    dataset: str
    run_id: str
    work_dir: Path
    versions: dict[str, int] = field(default_factory=dict)
    job_options: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> str:
        """The lake-level name of a dataset table."""
        return f"{self.dataset}/{name}"

    def read(self, name: str) -> DataFrame:
        """The version of `name` this run pinned (the one an earlier stage produced, or the latest)."""
        return self.lake.read(self.spark, self.table(name), self.versions.get(name))


@dataclass
class StageResult:
    """What to commit (table name -> DataFrame, or StagedFiles a stage wrote itself; each a new
    version) and free-form metrics.

    `files` lists artifacts outside the lake (shards, models) for the run record.
    """

    tables: dict[str, DataFrame] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    append: set[str] = field(default_factory=set)


class Stage(ABC):
    """One step of a job. Subclasses set `name` and `Config`, and implement `run`."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    # How the runner reconciles rows: "preserve" (first input rows == first output rows
    # + rows this stage wrote to `quarantine`), "source" (metrics["records_in"] ==
    # rows of every output table: ingest), "expand" (adds rows: augmentation) or
    # "none" (no table output: shards).
    row_policy: ClassVar[str] = "preserve"

    def __init__(self, config: StageConfig):
        self.config = config

    @abstractmethod
    def input_tables(self) -> list[str]:
        """Dataset tables read (their pinned versions form the resume key)."""

    @abstractmethod
    def output_tables(self) -> list[str]:
        """Dataset tables this stage writes; each gets one new version per run."""

    def source_fingerprint(self, ctx: StageContext) -> str:
        """Identity of inputs that are not tables (raw files); empty for table-only stages."""
        return ""

    def is_complete(self, ctx: StageContext, key: dict[str, str]) -> bool:
        """Whether an earlier run already produced this stage's output for `key`.

        The default checks every output table for a commit carrying `key`; stages
        whose output is files (shards) override it.
        """
        return all(ctx.lake.find_commit(ctx.table(t), key) is not None for t in self.output_tables())

    @abstractmethod
    def run(self, ctx: StageContext) -> StageResult:
        """Build the output DataFrames from `ctx.read(...)` of the input tables."""


Kernel = Callable[[pa.RecordBatch], pa.RecordBatch]
# A kernel over a whole partition: for work that keeps state across batches or whose output
# rows do not follow its input rows (ingest's readers take file ids and write files).
StreamKernel = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def apply_kernel(
    df: DataFrame,
    kernel: Kernel | StreamKernel,
    output_schema: pa.Schema | StructType,
    *,
    stream: bool = False,
) -> DataFrame:
    """Run a pure-Arrow kernel on `df` in the Python workers: the one `mapInArrow` path.

    By default `kernel` maps each non-empty batch to one batch; with `stream=True` it maps
    the partition's iterator of batches to an iterator (empty batches included). Its output
    must match `output_schema`, an Arrow schema or, for output unrelated to the input's
    columns, a Spark StructType as is. The kernel is pickled to the workers, so models it
    needs must be loaded lazily there (module-level cache).
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(output_schema) if isinstance(output_schema, pa.Schema) else output_schema
    if stream:
        return df.mapInArrow(kernel, schema)

    def _map(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield kernel(batch)

    return df.mapInArrow(_map, schema)


def spark_to_arrow_schema(df: DataFrame) -> pa.Schema:
    """The Arrow schema of a DataFrame, for kernels that append columns to their input."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


class TableStage(Stage):
    """A stage that reads its config's `input` table (and `against`, an existing corpus, when the
    config has one set) and writes its config's `output` table: most stages."""

    def input_tables(self) -> list[str]:
        against = getattr(self.config, "against", None)
        return [self.config.input] + ([against] if against else [])  # type: ignore[attr-defined]

    def output_tables(self) -> list[str]:
        return [self.config.output]  # type: ignore[attr-defined]
