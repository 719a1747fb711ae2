"""The lake's write path: Spark (or the driver) stages Parquet files, delta-rs commits them.

Why this path (docs/architecture.md, "Delta through delta-rs"): the Delta Spark jars come from
Maven, which offline and firewalled users cannot reach. Spark writes plain Parquet into a staging
folder of the table; the driver moves the files under the table root and commits them with
delta-rs, carrying the statistics of pipelines/framework/parquet_stats.py.

A write is invisible until its commit: a process killed before it leaves only staging files
(or moved but unreferenced files), which `clean_orphans` removes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions

from pipelines.framework.parquet_stats import parquet_stats

STAGING = "_staging"
META_PREFIX = "refinery."


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DeltaCommits(ABC):
    """Staging, commit and cleanup of a lake's tables; the Lake supplies naming and history."""

    @abstractmethod
    def path(self, table: str) -> Path:
        """The table's folder."""

    @abstractmethod
    def exists(self, table: str) -> bool:
        """Whether the table has a Delta log."""

    @abstractmethod
    def history(self, table: str) -> list[dict[str, Any]]:
        """Commits newest first, refinery's metadata under `meta`."""

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
            inject_fault("before_commit", table)
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
