"""The lake's write path: Parquet files named per transaction under the table root, committed by delta-rs.

Why this path (docs/architecture.md, "Delta through delta-rs"): the Delta Spark jars come from
Maven, which offline and firewalled users cannot reach. On object storage, Spark tasks write plain
Parquet files straight under the table root through the I/O layer (pipelines/framework/table_io.py);
on local disk Spark's own writer fills a staging folder and the commit renames its files under the
root (faster there: `spark_parquet`). Either way every data file carries its transaction's id, and
the driver commits the add actions with delta-rs, carrying the statistics of
pipelines/framework/parquet_stats.py, on object storage with conditional puts
(`conditional_put: etag`), so two racing writers end with one commit and one TableConflictError.

A write is invisible until its commit: a process killed before it leaves only uncommitted files,
which `clean_orphans` removes once their writer is dead (pipelines/framework/txn_owner.py says how
a live concurrent writer's files are told apart).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions

from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import scrub
from pipelines.framework.table_io import (
    PlacedFiles,
    WrittenFile,
    data_file_name,
    footer_facts,
    txn_of,
    write_dataframe,
    write_table_file,
)
from pipelines.framework.txn_owner import (
    STAGING,
    grace_seconds,
    lease_of,
    open_lease,
    read_owners,
    release_lease,
)

DELTA_LOG = "_delta_log"
META_PREFIX = "refinery."
COMMIT_FILE = re.compile(r"^\d{20}\.json$")


class TableConflictError(RuntimeError):
    """Another writer committed to the same table first; nothing of ours is visible."""


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


def inject_fault(point: str, table: str) -> None:
    """Fault injection for resume tests: REFINERY_FAULT=point:table SIGKILLs this process here.

    A real kill at the worst moment (files moved, nothing committed) is the only
    honest test that an interrupted write stays invisible and is cleaned up.
    """
    if os.environ.get("REFINERY_FAULT") == f"{point}:{table}":
        os.kill(os.getpid(), signal.SIGKILL)


class DeltaCommits(ABC):
    """Staging, commit and cleanup of a lake's tables; the Lake supplies naming and history.

    `spark_parquet`: whether Spark's own Parquet reader and writer serve this lake. They reach
    local disk without any connector and are faster there than tasks doing the I/O in Python
    (benchmarks.lake_io: about 1.8x on 2 cores), so local lakes use them; object storage always
    goes through the I/O layer (pipelines/framework/table_io.py).
    """

    spark_parquet: bool

    @abstractmethod
    def path(self, table: str) -> Location:
        """The table's root."""

    @abstractmethod
    def exists(self, table: str) -> bool:
        """Whether the table has a Delta log."""

    @abstractmethod
    def history(self, table: str) -> list[dict[str, Any]]:
        """Commits newest first, refinery's metadata under `meta`."""

    def _staging_dir(self, table: str, txn: str) -> Location:
        return self.path(table) / STAGING / txn

    def _open(self, table: str) -> str:
        """A new transaction on `table`: its owner file exists before any of its files."""
        txn = uuid.uuid4().hex
        open_lease(self.path(table), txn)
        return txn

    def open_transaction(self, table: str) -> str:
        """A transaction whose tasks write under the table root themselves (PlacedFiles)."""
        return self._open(table)

    def staging_area(self, table: str) -> tuple[str, Location]:
        """(txn, folder) for tasks to write a future version of `table` into (see StagedFiles).

        Committing moves the files under the table root: a rename on local disk, a server-side
        copy on object storage. Writers that can name their files with `data_file_name` write
        under the root directly instead (`write`).
        """
        txn = self._open(table)
        staging = self._staging_dir(table, txn)
        staging.make_dirs()
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
        if isinstance(df, StagedFiles | PlacedFiles) and df.table != table:
            raise ValueError(f"files staged for {df.table!r} cannot be committed to {table!r}")
        if isinstance(df, StagedFiles):
            return self.commit_staged(table, df.txn, metadata, mode, files=df.files)
        if isinstance(df, PlacedFiles):
            _check_mode(mode)
            return self._commit_files(table, df.txn, df.schema, list(df.files), metadata, mode)
        _check_mode(mode)
        if self.spark_parquet:
            return self._write_with_spark(df, table, metadata, mode, max_records_per_file)
        txn = self._open(table)
        try:
            schema, written = write_dataframe(df, self.path(table), txn, max_records_per_file)
        except BaseException:
            self._discard(table, txn, ())
            raise
        return self._commit_files(table, txn, schema, written, metadata, mode)

    def _write_with_spark(
        self, df: Any, table: str, metadata: Mapping[str, Any] | None, mode: str, max_records: int | None
    ) -> CommitResult:
        """Spark's own Parquet writer into the staging folder; the commit renames the files (local disk)."""
        txn, staging = self.staging_area(table)
        writer = df.write.mode("overwrite")
        if max_records:
            writer = writer.option("maxRecordsPerFile", max_records)
        try:
            writer.parquet(staging.url)
        except BaseException:
            self._discard(table, txn, ())
            raise
        return self.commit_staged(table, txn, metadata, mode)

    def write_arrow(
        self, data: pa.Table, table: str, metadata: Mapping[str, Any] | None = None, mode: str = "overwrite"
    ) -> CommitResult:
        """Write a small driver-side Arrow table (run summaries, test fixtures) through the same commit path."""
        _check_mode(mode)
        txn = self._open(table)
        written = write_table_file(self.path(table) / data_file_name(txn, "00000"), data)
        return self._commit_files(table, txn, data.schema, [written], metadata, mode)

    def commit_staged(
        self,
        table: str,
        txn: str,
        metadata: Mapping[str, Any] | None,
        mode: str,
        files: Iterable[str] | None = None,
    ) -> CommitResult:
        """Move a transaction's staged files (all, or the `files` named) under the table root and commit them."""
        _check_mode(mode)
        root, staging = self.path(table), self._staging_dir(table, txn)
        if files is None:
            names = sorted(e.location.name for e in staging.list() if e.location.name.endswith(".parquet"))
            names = [n for n in names if not n.startswith((".", "_"))]
        else:
            names = sorted(files)
        if not names:
            raise RuntimeError(f"no Parquet file was staged for {table!r} (staging {staging})")
        moved = [data_file_name(txn, f"{i:05d}") for i in range(len(names))]
        lease = lease_of(root, txn)
        if lease is not None:
            lease.record_moved(moved)
        else:  # staged by another process object: write an owner that lists the files before moving
            open_lease(root, txn).record_moved(moved)
        schema, written = None, []
        for name, dest in zip(names, moved, strict=True):
            (staging / name).move_to(root / dest)
            file_schema, facts = footer_facts(root / dest)
            schema = schema or file_schema.remove_metadata()
            written.append(facts)
        assert schema is not None
        return self._commit_files(table, txn, schema, written, metadata, mode)

    def _commit_files(
        self,
        table: str,
        txn: str,
        schema: pa.Schema,
        written: list[WrittenFile],
        metadata: Mapping[str, Any] | None,
        mode: str,
    ) -> CommitResult:
        """Commit files already under the table root as one version; on a lost race, remove them."""
        inject_fault("before_commit", table)
        now = int(time.time() * 1000)
        adds = [
            AddAction(
                path=w.name,
                size=w.size,
                partition_values={},
                modification_time=now,
                data_change=True,
                stats=w.stats,
            )
            for w in written
        ]
        props = CommitProperties(
            custom_metadata={
                f"{META_PREFIX}{k}": scrub(str(v)) for k, v in {**(metadata or {}), "txn": txn}.items()
            }
        )
        try:
            version = self._commit(table, schema, adds, mode, props)
        except CommitFailedError as exc:
            self._discard(table, txn, [w.name for w in written])
            raise TableConflictError(
                f"another writer committed to {table!r} while this one was writing; nothing was committed. "
                f"Rerun the stage: it will read the new version. ({exc})"
            ) from exc
        self._finish(table, txn, {w.name for w in written})
        return CommitResult(table, version, sum(w.num_records for w in written), len(adds))

    def _commit(
        self,
        table: str,
        schema: pa.Schema,
        adds: list[AddAction],
        mode: str,
        props: CommitProperties,
    ) -> int:
        root = self.path(table)
        options = root.delta_storage_options()
        delta_schema = Schema.from_arrow(schema)
        if mode == "overwrite":
            # delta-rs would rebase a losing overwrite onto the winner's version and
            # remove only the files it had read, leaving the winner's rows in place:
            # an overwrite that loses the race must fail instead.
            props = CommitProperties(custom_metadata=props.custom_metadata, max_commit_retries=0)
        txn = props.custom_metadata[f"{META_PREFIX}txn"]
        if not self.exists(table):
            try:
                # No retry: a create rebased past version 0 would not be a create.
                create_table_with_add_actions(
                    root.url,
                    delta_schema,
                    adds,
                    mode="error",
                    commit_properties=CommitProperties(
                        custom_metadata=props.custom_metadata, max_commit_retries=0
                    ),
                    storage_options=options,
                )
            except (DeltaError, CommitFailedError):
                if not self.exists(table):
                    raise
                # a concurrent writer created the table first: commit on top of it
            else:
                return self._version_of_txn(table, txn)
        dt = DeltaTable(root.url, storage_options=options)
        dt.create_write_transaction(adds, mode=mode, schema=delta_schema, commit_properties=props)
        return self._version_of_txn(table, txn)

    def _version_of_txn(self, table: str, txn: str) -> int:
        """The version our commit landed at, read from the log files themselves.

        The newest version may already be a concurrent writer's, and delta-rs'
        history numbers entries by position, which can shift while others commit;
        the commit file's name is the only unambiguous answer.
        """
        log = self.path(table) / DELTA_LOG
        entries = sorted((e.location for e in log.list(recursive=False)), key=lambda loc: loc.name)
        for entry in reversed([loc for loc in entries if COMMIT_FILE.match(loc.name)]):
            if txn in entry.read_text():
                return int(entry.name.split(".")[0])
        raise RuntimeError(f"commit of {table!r} (txn {txn}) succeeded but no log file holds it")

    def discard_staged(self, table: str, txn: str) -> None:
        """Drop a staging area that will not be committed (its stage failed)."""
        self._discard(table, txn, ())

    def _discard(self, table: str, txn: str, names: Iterable[str]) -> None:
        """Remove every file of an uncommitted transaction, its owner file last."""
        self._finish(table, txn, set(), extra=names)

    def _finish(self, table: str, txn: str, keep: set[str], extra: Iterable[str] = ()) -> None:
        """Remove a transaction's staging folder and its root files not in `keep`, then its owner file.

        The owner goes last: a process killed half-way leaves an owner that names the rest.
        """
        root = self.path(table)
        doomed = {name for name in extra if name not in keep}
        doomed |= {
            e.location.name
            for e in root.list(recursive=False)
            if txn_of(e.location.name) == txn and e.location.name not in keep
        }
        for name in sorted(doomed):
            (root / name).delete()
        self._staging_dir(table, txn).delete_tree()
        release_lease(root, txn)

    def clean_orphans(self, table: str) -> list[str]:
        """Remove what dead writers left; return their transaction ids.

        Committed transactions lose only their unreferenced files; uncommitted ones are removed
        whole once their owner is dead (pipelines/framework/txn_owner.py, the rule and its grace
        period). Live writers, here or on other hosts, are left alone.
        """
        root = self.path(table)
        owners = read_owners(root)
        staged = {child.name for child in (root / STAGING).children()}
        if not owners and not staged:
            return []
        committed = self._committed_files(table, set(owners))
        now, grace, removed = time.time(), grace_seconds(), []
        for txn, owner in owners.items():
            if txn in committed:
                self._finish(table, txn, committed[txn])
            elif owner.is_dead(now, grace):
                self._discard(table, txn, owner.moved)
                removed.append(txn)
        for txn in sorted(staged - set(owners)):
            # A staging folder without an owner outlived its transaction (the owner goes last).
            self._staging_dir(table, txn).delete_tree()
            removed.append(txn)
        return removed

    def _committed_files(self, table: str, txns: set[str]) -> dict[str, set[str]]:
        """For each of `txns` that was committed: the data files its commit added."""
        if not txns or not self.exists(table):
            return {}
        found: dict[str, set[str]] = {}
        for commit in self.history(table):
            txn = commit["meta"].get("txn")
            if txn in txns:
                found[txn] = self._added_files(table, int(commit["version"]))
        return found

    def _added_files(self, table: str, version: int) -> set[str]:
        log = self.path(table) / DELTA_LOG / f"{version:020d}.json"
        names = set()
        for line in log.read_text().splitlines():
            action = json.loads(line).get("add")
            if action:
                names.add(action["path"])
        return names


def _check_mode(mode: str) -> None:
    if mode not in ("overwrite", "append"):
        raise ValueError(f"mode must be 'overwrite' or 'append', not {mode!r}")
