"""The Python API: build a job from config objects, run it, read any table version.

For notebooks, tests and orchestrators that should not write YAML files or know the
lake's layout. A job built here goes through exactly the validation a YAML spec does
(`pipelines.framework.spec.parse_spec`), so a config object that is wrong here would be wrong in
YAML too, with the same message; and a run is recorded like any `refinery run`
(`refinery runs`, `refinery show`, the web app see it).

    from jobs.api import Job, Lake, Step
    from curation.annotate.stage import AnnotateConfig
    from curation.decide import DecideConfig
    from pipelines.ingest.stage import IngestConfig

    job = Job("mine", lake="lake", stages=[Step("ingest", IngestConfig(inputs=[...])), ...])
    run = job.run()
    Lake("lake").table("mine/decided", version=0).pandas()

Reading opens one pinned snapshot of the table; `.arrow()`, `.pandas()` and `.polars()`
load it into this process (select `columns` for big tables), while `.dataset()`,
`.polars(lazy=True)` and `.duckdb()` scan it lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from pipelines.framework import lake as lake_layer
from pipelines.framework.runrecord import RunRecord
from pipelines.framework.spec import JobSpec, parse_spec
from pipelines.framework.stage import StageConfig
from pipelines.framework.storage import Location


@dataclass
class Step:
    """One stage of a job: its registered name (or `module:Class`), its config, an optional id."""

    stage: str
    config: StageConfig | dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def as_spec(self) -> dict[str, Any]:
        params = self.config.model_dump(mode="json") if isinstance(self.config, BaseModel) else self.config
        entry: dict[str, Any] = {"stage": self.stage, "params": params}
        if self.id is not None:
            entry["id"] = self.id
        return entry


@dataclass
class Job:
    """A job spec as Python objects; `spec()` is the mapping a YAML file would hold."""

    name: str
    stages: list[Step]
    lake: str | Path | Location = "lake"
    dataset: str | None = None
    spark_master: str | None = None
    spark_conf: dict[str, str | int | float | bool] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "lake": str(self.lake),
            "spark": {"master": self.spark_master, "conf": dict(self.spark_conf)},
            "stages": [step.as_spec() for step in self.stages],
        }
        if self.dataset is not None:
            spec["dataset"] = self.dataset
        return spec

    def validate(self) -> JobSpec:
        """The validated spec; raises `pipelines.framework.spec.SpecError` naming the field, as for YAML."""
        return parse_spec(self.spec(), source=f"job {self.name!r}")[0]

    def run(self, run_id: str | None = None, spark: Any = None, progress: bool = False) -> RunRecord:
        """Run every stage (resuming by content like `refinery run`) and return the run's record.

        Pass `spark` to reuse a session you hold; by default one is started from the job's
        Spark settings.
        """
        from pipelines.framework.runner import Runner

        spec, stages = parse_spec(self.spec(), source=f"job {self.name!r}")
        return Runner(spec, stages, run_id=run_id, spark=spark, progress=progress).run()


class Table:
    """One version of one Delta table, pinned when opened: later commits do not change it."""

    def __init__(self, lake: lake_layer.Lake, name: str, version: int | None = None):
        self.name = name
        self._delta = lake.delta(name, version)
        self._location = lake.path(name)
        self.version: int = self._delta.version()

    def __repr__(self) -> str:
        return f"Table({self.name!r}, version={self.version})"

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(self._delta.schema().to_arrow())

    def dataset(self) -> Any:
        """A lazy pyarrow dataset over the snapshot (filter and project before reading)."""
        return lake_layer.snapshot_dataset(self._delta, self._location)

    def arrow(self, columns: list[str] | None = None) -> pa.Table:
        return self.dataset().to_table(columns=columns)

    def pandas(self, columns: list[str] | None = None) -> Any:
        return self.arrow(columns).to_pandas()

    def polars(self, columns: list[str] | None = None, lazy: bool = False) -> Any:
        import polars as pl

        frame = pl.scan_pyarrow_dataset(self.dataset())
        if columns is not None:
            frame = frame.select(columns)
        return frame if lazy else frame.collect()

    def duckdb(self, connection: Any = None) -> Any:
        """A DuckDB relation scanning the snapshot (`.df()`, `.fetchall()`, or SQL on it)."""
        import duckdb

        return (connection or duckdb).from_arrow(self.dataset())


class Lake:
    """A lake folder, for reading: its tables, their versions, and the runs recorded in it."""

    def __init__(self, root: str | Path | Location = "lake"):
        self._lake = lake_layer.Lake(root)
        self.root = self._lake.root

    def tables(self) -> list[str]:
        return self._lake.tables()

    def versions(self, name: str) -> list[int]:
        """Every version of `name`, oldest first."""
        return sorted(int(commit["version"]) for commit in self._lake.history(name))

    def table(self, name: str, version: int | None = None) -> Table:
        """`name` (`dataset/table`) at `version` (default: the latest)."""
        return Table(self._lake, name, version)

    def runs(self) -> list[RunRecord]:
        from pipelines.framework.runrecord import list_runs

        return list_runs(self.root)

    def run(self, ref: str = "latest") -> RunRecord:
        """A run by id, unique prefix or `latest`."""
        from jobs.registry import load_run

        return load_run(self.root, ref)
