"""The lake: Delta tables under one root folder, written by Spark, committed by delta-rs.

Naming and reads live here: readers pin a snapshot and hand its file list to Spark, or read it
as a pyarrow dataset. Writes are pipelines/framework/delta_commit.py's (docs/architecture.md,
"Delta through delta-rs").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pa_fs
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from pipelines.framework.delta_commit import META_PREFIX, STAGING, DeltaCommits


class TableMissingError(LookupError):
    """The named table (or version) does not exist in the lake."""


def snapshot_dataset(delta: DeltaTable) -> Any:
    """A pyarrow dataset over a Delta snapshot that reads through Arrow's own filesystem.

    delta-rs's default wraps its Rust store in a pyarrow `PyFileSystem`, a C++ object holding a
    Python handler. A scan that stops early (`head()`, a loop that breaks) leaves readahead tasks on
    Arrow's I/O threads; when one drops the last reference after the interpreter began finalizing,
    freeing the handler needs the GIL, Python ends that thread with `pthread_exit`, and the forced
    unwind through a `noexcept` destructor calls `std::terminate`: the process dies with SIGABRT
    ("terminate called without an active exception") after its work is done. A native filesystem
    holds no Python object, so no Arrow thread ever waits for the GIL.
    """
    filesystem, root = pa_fs.FileSystem.from_uri(delta.table_uri)
    return delta.to_pyarrow_dataset(filesystem=pa_fs.SubTreeFileSystem(root, filesystem))


class Lake(DeltaCommits):
    """A folder of Delta tables. Table names are relative paths such as `demo/documents`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    # ----------------------------------------------------------------- naming
    def path(self, table: str) -> Path:
        """The table's folder; refuses names that would leave the lake."""
        candidate = (self.root / table).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise ValueError(f"table name {table!r} escapes the lake at {self.root}")
        return candidate

    def exists(self, table: str) -> bool:
        return (self.path(table) / "_delta_log").is_dir()

    def tables(self) -> list[str]:
        """Every Delta table under the root, as names relative to it."""
        if not self.root.exists():
            return []
        found = []
        for log in sorted(self.root.rglob("_delta_log")):
            if STAGING not in log.parts:
                found.append(log.parent.relative_to(self.root).as_posix())
        return found

    # ---------------------------------------------------------------- reading
    def delta(self, table: str, version: int | None = None) -> DeltaTable:
        if not self.exists(table):
            raise TableMissingError(
                f"no table {table!r} in lake {self.root}; run the stage that writes it first"
            )
        try:
            return DeltaTable(str(self.path(table)), version=version)
        except (DeltaError, TableNotFoundError, OSError) as exc:
            raise TableMissingError(f"table {table!r} has no version {version}: {exc}") from exc

    def version(self, table: str) -> int | None:
        return self.delta(table).version() if self.exists(table) else None

    def num_records(self, table: str, version: int | None = None) -> int:
        """Row count from the add actions' statistics: no data file is opened."""
        actions = pa.table(self.delta(table, version).get_add_actions(flatten=True))
        return int(sum(v or 0 for v in actions.column("num_records").to_pylist()))

    def rows_added(self, table: str, version: int) -> int:
        """Rows that the commit at `version` added (its add actions' numRecords).

        For an overwrite that is the table's size; for an append only the new rows,
        which is what a stage's row accounting needs.
        """
        log = self.path(table) / "_delta_log" / f"{version:020d}.json"
        if not log.is_file():
            raise TableMissingError(f"table {table!r} has no commit file for version {version}")
        total = 0
        for line in log.read_text().splitlines():
            action = json.loads(line).get("add")
            if action and action.get("stats"):
                total += int(json.loads(action["stats"]).get("numRecords", 0))
        return total

    def history(self, table: str) -> list[dict[str, Any]]:
        """Commits newest first, with refinery's metadata unprefixed under `meta`."""
        out = []
        for commit in self.delta(table).history():
            meta = {k[len(META_PREFIX) :]: v for k, v in commit.items() if k.startswith(META_PREFIX)}
            out.append({**{k: v for k, v in commit.items() if not k.startswith(META_PREFIX)}, "meta": meta})
        return out

    def find_commit(self, table: str, match: Mapping[str, str]) -> int | None:
        """The newest version whose refinery metadata contains every item of `match`."""
        if not self.exists(table):
            return None
        for commit in self.history(table):
            meta = commit["meta"]
            if all(meta.get(k) == v for k, v in match.items()):
                return int(commit["version"])
        return None

    def arrow_schema(self, table: str, version: int | None = None) -> pa.Schema:
        return pa.schema(self.delta(table, version).schema().to_arrow())

    def read(self, spark: Any, table: str, version: int | None = None) -> Any:
        """A pinned snapshot as a Spark DataFrame (the file list is fixed at call time)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        dt = self.delta(table, version)
        spark_schema = from_arrow_schema(pa.schema(dt.schema().to_arrow()))
        uris = dt.file_uris()
        if not uris:
            return spark.createDataFrame([], spark_schema)
        return spark.read.schema(spark_schema).parquet(*uris)

    def dataset(self, table: str, version: int | None = None) -> Any:
        """A pyarrow dataset over a snapshot, for bounded driver-side reads (web app, reports)."""
        return snapshot_dataset(self.delta(table, version))
