"""The stage contract: a named step with a validated config, input tables and output tables.

A stage never writes tables itself: it returns DataFrames and the runner commits
them (so commit metadata, resume keys and row accounting live in one place).
Per-document work belongs in kernels (`pa.RecordBatch -> pa.RecordBatch`, no
Spark import) that a stage applies with `pipelines.framework.arrow_kernel.apply_kernel`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

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

    def preflight(self) -> None:
        """Checks that need no Spark, run for every stage before Spark starts: a missing input file
        should cost a second, not a JVM start and the stages before it. Raises with what to fix; most
        stages have nothing to check before they read their tables."""
        return None

    def is_complete(self, ctx: StageContext, key: dict[str, str]) -> bool:
        """Whether an earlier run already produced this stage's output for `key`.

        The default checks every output table for a commit carrying `key`; stages
        whose output is files (shards) override it.
        """
        return all(ctx.lake.find_commit(ctx.table(t), key) is not None for t in self.output_tables())

    @abstractmethod
    def run(self, ctx: StageContext) -> StageResult:
        """Build the output DataFrames from `ctx.read(...)` of the input tables."""


class TableStage(Stage):
    """A stage that reads its config's `input` table (and `against`, an existing corpus, when the
    config has one set) and writes its config's `output` table: most stages."""

    def input_tables(self) -> list[str]:
        against = getattr(self.config, "against", None)
        return [self.config.input] + ([against] if against else [])  # type: ignore[attr-defined]

    def output_tables(self) -> list[str]:
        return [self.config.output]  # type: ignore[attr-defined]
