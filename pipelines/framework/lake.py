"""The lake: Delta tables under one root folder, written by Spark, committed by delta-rs.

Why this split (docs/architecture.md, "Delta through delta-rs"): the Delta Spark jars come from Maven, which
offline and firewalled users cannot reach. Spark writes plain Parquet into a
staging folder of the table; the driver moves the files under the table root and
commits them with delta-rs, carrying numRecords and min/max statistics read from
the Parquet footers. Readers pin a snapshot and hand its file list to Spark.

A write is invisible until its commit: a process killed before it leaves only
staging files (or moved but unreferenced files), which `clean_orphans` removes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions

STAGING = "_staging"
META_PREFIX = "refinery."
MAX_STAT_STRING = 64


class TableConflictError(RuntimeError):
    """Another writer committed to the same table first; nothing of ours is visible."""


class TableMissingError(LookupError):
    """The named table (or version) does not exist in the lake."""


@dataclass(frozen=True)
class StagedFiles:
    """Parquet files that Spark tasks wrote straight into a table's staging folder.

    A stage that writes several tables from one scan (ingest) stages its files
    itself instead of handing the runner one DataFrame per table, which would scan
    the input once per table. Only the files named here are committed: a failed or
    speculative task attempt may have left others in the folder, and they go with it.
    """

    table: str
    txn: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class CommitResult:
    table: str
    version: int
    num_records: int
    num_files: int


def _stat_value(value: Any) -> Any:
    """Convert a Parquet statistic into the JSON form Delta readers expect, or None to skip it."""
    if isinstance(value, bytes):
        return None
    if isinstance(value, str):
        return value if len(value) <= MAX_STAT_STRING else None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bool, int, float)):
        return value
    return None


def parquet_stats(path: Path) -> tuple[int, dict[str, Any]]:
    """numRecords and per-column min/max/nullCount from a file's footer (top-level primitives only)."""
    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    # Parquet leaves are not Arrow fields: a list or struct column has several leaves,
    # so columns are matched by their leaf path, never by position.
    leaf_index = (
        {meta.row_group(0).column(j).path_in_schema: j for j in range(meta.num_columns)}
        if meta.num_row_groups
        else {}
    )
    for field in schema:
        if pa.types.is_nested(field.type) or pa.types.is_binary(field.type) or field.name not in leaf_index:
            continue
        col_index = leaf_index[field.name]
        lo = hi = None
        null_count = 0
        complete = meta.num_row_groups > 0
        for rg in range(meta.num_row_groups):
            column = meta.row_group(rg).column(col_index)
            stats = column.statistics
            if stats is None:
                complete = False
                break
            null_count += stats.null_count or 0
            if stats.has_min_max:
                lo = stats.min if lo is None else min(lo, stats.min)
                hi = stats.max if hi is None else max(hi, stats.max)
        if not complete:
            continue
        nulls[field.name] = null_count
        if lo is not None and (vlo := _stat_value(lo)) is not None and (vhi := _stat_value(hi)) is not None:
            mins[field.name] = vlo
            maxs[field.name] = vhi
    stats_json = {"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    return meta.num_rows, stats_json


def _fault(point: str, table: str) -> None:
    """Fault injection for resume tests: REFINERY_FAULT=point:table SIGKILLs this process here.

    A real kill at the worst moment (files moved, nothing committed) is the only
    honest test that an interrupted write stays invisible and is cleaned up.
    """
    if os.environ.get("REFINERY_FAULT") == f"{point}:{table}":
        os.kill(os.getpid(), signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class Lake:
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

    # ---------------------------------------------------------------- writing
    def _staging_dir(self, table: str, txn: str) -> Path:
        return self.path(table) / STAGING / txn

    def _write_owner(self, table: str, txn: str, moved: Iterable[str] = ()) -> Path:
        owner = self.path(table) / STAGING / f"{txn}.owner.json"
        owner.parent.mkdir(parents=True, exist_ok=True)
        tmp = owner.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "moved": list(moved)}))
        os.replace(tmp, owner)
        return owner

    def staging_area(self, table: str) -> tuple[str, Path]:
        """(txn, folder) for tasks to write a future version of `table` into (see StagedFiles)."""
        txn = uuid.uuid4().hex
        self._write_owner(table, txn)
        staging = self._staging_dir(table, txn)
        staging.mkdir(parents=True)
        return txn, staging

    def write(
        self,
        df: Any,
        table: str,
        metadata: Mapping[str, Any] | None = None,
        mode: str = "overwrite",
        max_records_per_file: int | None = None,
    ) -> CommitResult:
        """Write a Spark DataFrame (or commit StagedFiles) as one new version of `table`.

        `mode` is "overwrite" (the new version holds exactly this data; older
        versions stay readable) or "append".
        """
        if isinstance(df, StagedFiles):
            if df.table != table:
                raise ValueError(f"files staged for {df.table!r} cannot be committed to {table!r}")
            return self.commit_staged(table, df.txn, metadata, mode, files=df.files)
        txn = uuid.uuid4().hex
        self._write_owner(table, txn)
        staging = self._staging_dir(table, txn)
        writer = df.write.mode("error")
        if max_records_per_file:
            writer = writer.option("maxRecordsPerFile", max_records_per_file)
        writer.parquet(str(staging))
        return self.commit_staged(table, txn, metadata, mode)

    def write_arrow(
        self, data: pa.Table, table: str, metadata: Mapping[str, Any] | None = None, mode: str = "overwrite"
    ) -> CommitResult:
        """Write a small driver-side Arrow table (run summaries, test fixtures) through the same commit path."""
        txn = uuid.uuid4().hex
        self._write_owner(table, txn)
        staging = self._staging_dir(table, txn)
        staging.mkdir(parents=True)
        pq.write_table(data, staging / "part-00000.parquet")
        return self.commit_staged(table, txn, metadata, mode)

    def commit_staged(
        self,
        table: str,
        txn: str,
        metadata: Mapping[str, Any] | None,
        mode: str,
        files: Iterable[str] | None = None,
    ) -> CommitResult:
        """Move a transaction's staged files (all, or the `files` named) under the table root and commit them."""
        if mode not in ("overwrite", "append"):
            raise ValueError(f"mode must be 'overwrite' or 'append', not {mode!r}")
        root = self.path(table)
        staging = self._staging_dir(table, txn)
        if files is None:
            paths = sorted(p for p in staging.rglob("*.parquet") if not p.name.startswith((".", "_")))
        else:
            paths = [staging / name for name in sorted(files)]
        if not paths:
            raise RuntimeError(f"Spark wrote no Parquet file for {table!r} (staging {staging})")
        schema = pq.read_schema(paths[0]).remove_metadata()
        moved = [f"part-{i:05d}-{txn}.parquet" for i in range(len(paths))]
        self._write_owner(table, txn, moved)
        adds, total = [], 0
        for src, name in zip(paths, moved, strict=True):
            num, stats = parquet_stats(src)
            total += num
            dest = root / name
            os.replace(src, dest)
            _fault("before_commit", table)
            adds.append(
                AddAction(
                    path=name,
                    size=dest.stat().st_size,
                    partition_values={},
                    modification_time=int(time.time() * 1000),
                    data_change=True,
                    stats=json.dumps(stats),
                )
            )
        props = CommitProperties(
            custom_metadata={f"{META_PREFIX}{k}": str(v) for k, v in {**(metadata or {}), "txn": txn}.items()}
        )
        try:
            version = self._commit(root, table, schema, adds, mode, props)
        except CommitFailedError as exc:
            self._discard(table, txn, moved)
            raise TableConflictError(
                f"another writer committed to {table!r} while this one was writing; nothing was committed. "
                f"Rerun the stage: it will read the new version. ({exc})"
            ) from exc
        shutil.rmtree(staging, ignore_errors=True)
        (root / STAGING / f"{txn}.owner.json").unlink(missing_ok=True)
        return CommitResult(table, version, total, len(adds))

    def _commit(
        self,
        root: Path,
        table: str,
        schema: pa.Schema,
        adds: list[AddAction],
        mode: str,
        props: CommitProperties,
    ) -> int:
        delta_schema = Schema.from_arrow(schema)
        if mode == "overwrite":
            # delta-rs would rebase a losing overwrite onto the winner's version and
            # remove only the files it had read, leaving the winner's rows in place:
            # an overwrite that loses the race must fail instead.
            props = CommitProperties(custom_metadata=props.custom_metadata, max_commit_retries=0)
        if not self.exists(table):
            try:
                # No retry: a create rebased past version 0 would not be a create.
                create_table_with_add_actions(
                    str(root),
                    delta_schema,
                    adds,
                    mode="error",
                    commit_properties=CommitProperties(
                        custom_metadata=props.custom_metadata, max_commit_retries=0
                    ),
                )
            except (DeltaError, CommitFailedError):
                if not self.exists(table):
                    raise
                # a concurrent writer created the table first: commit on top of it
            else:
                return self._version_of_txn(table, props.custom_metadata[f"{META_PREFIX}txn"])
        dt = DeltaTable(str(root))
        dt.create_write_transaction(adds, mode=mode, schema=delta_schema, commit_properties=props)
        return self._version_of_txn(table, props.custom_metadata[f"{META_PREFIX}txn"])

    def _version_of_txn(self, table: str, txn: str) -> int:
        """The version our commit landed at, read from the log files themselves.

        The newest version may already be a concurrent writer's, and delta-rs'
        history numbers entries by position, which can shift while others commit;
        the commit file's name is the only unambiguous answer.
        """
        log = self.path(table) / "_delta_log"
        for entry in sorted(log.glob("[0-9]" * 20 + ".json"), reverse=True):
            if txn in entry.read_text():
                return int(entry.name.split(".")[0])
        raise RuntimeError(f"commit of {table!r} (txn {txn}) succeeded but no log file holds it")

    def discard_staged(self, table: str, txn: str) -> None:
        """Drop a staging area that will not be committed (its stage failed)."""
        self._discard(table, txn, ())

    def _discard(self, table: str, txn: str, moved: Iterable[str]) -> None:
        root = self.path(table)
        for name in moved:
            (root / name).unlink(missing_ok=True)
        shutil.rmtree(self._staging_dir(table, txn), ignore_errors=True)
        (root / STAGING / f"{txn}.owner.json").unlink(missing_ok=True)

    def clean_orphans(self, table: str) -> list[str]:
        """Remove what dead writers left: staging folders and moved files never committed.

        A transaction is dead when its owner process is gone (same host) and its
        txn id appears in no commit. Live writers are left alone.
        """
        staging_root = self.path(table) / STAGING
        if not staging_root.is_dir():
            return []
        committed = set()
        if self.exists(table):
            committed = {c["meta"].get("txn") for c in self.history(table)}
        removed = []
        for owner in staging_root.glob("*.owner.json"):
            txn = owner.name.split(".")[0]
            try:
                info = json.loads(owner.read_text())
            except (OSError, ValueError):
                info = {}
            if info.get("host") == socket.gethostname() and _pid_alive(int(info.get("pid", -1))):
                continue
            if txn not in committed:
                self._discard(table, txn, info.get("moved", []))
                removed.append(txn)
            else:
                shutil.rmtree(self._staging_dir(table, txn), ignore_errors=True)
                owner.unlink(missing_ok=True)
        for stray in staging_root.iterdir():
            if stray.is_dir() and not (staging_root / f"{stray.name}.owner.json").exists():
                shutil.rmtree(stray, ignore_errors=True)
                removed.append(stray.name)
        return removed
