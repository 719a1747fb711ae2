"""The lake: Delta tables under one root (a folder or an object-store prefix), committed by delta-rs.

Naming and reads live here: readers pin a snapshot and read exactly its file list, with Spark's
Parquet reader on local disk, in Spark tasks through the I/O layer on object storage
(pipelines/framework/table_io.py), or as a pyarrow dataset. Writes are pipelines/framework/delta_commit.py's (docs/architecture.md, "Delta through
delta-rs"). Every path is a `Location`, so the same code serves `lake/` and `s3://bucket/lake`.
"""

from __future__ import annotations

import collections
import difflib
import json
import os
import re
import stat
import urllib.parse
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.fs as pa_fs
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from pipelines.framework.delta_commit import DELTA_LOG, META_PREFIX, DeltaCommits
from pipelines.framework.storage import Location
from pipelines.framework.storage_urls import URL
from pipelines.framework.table_io import read_dataframe

COMMIT_FILE = re.compile(r"^\d{20}\.json$")


BACKTRACE_FRAME = re.compile(r"^\s*\d+: ")


def without_backtrace(exc: BaseException) -> str:
    """delta-rs's message without the Rust backtrace its kernel appends (frames `0: <unknown>` ...),
    which tells a user nothing and buries the one line that does."""
    lines = str(exc).splitlines()
    cut = next((i for i, line in enumerate(lines) if BACKTRACE_FRAME.match(line)), len(lines))
    return "\n".join(lines[:cut]).strip()


class TableMissingError(LookupError):
    """The named table (or version) does not exist in the lake."""


def snapshot_dataset(delta: DeltaTable, location: Location | None = None) -> Any:
    """A pyarrow dataset over a Delta snapshot that reads through Arrow's own filesystem.

    delta-rs's default wraps its Rust store in a pyarrow `PyFileSystem`, a C++ object holding a
    Python handler. A scan that stops early (`head()`, a loop that breaks) leaves readahead tasks on
    Arrow's I/O threads; when one drops the last reference after the interpreter began finalizing,
    freeing the handler needs the GIL, Python ends that thread with `pthread_exit`, and the forced
    unwind through a `noexcept` destructor calls `std::terminate`: the process dies with SIGABRT
    ("terminate called without an active exception") after its work is done. A native filesystem
    holds no Python object, so no Arrow thread ever waits for the GIL.

    `location` (the table's root) supplies the filesystem built from the job's storage settings;
    without it the table URI is taken as a local path or a URL Arrow can reach on its own.
    """
    if location is None:
        location = Location.parse(delta.table_uri)
    return delta.to_pyarrow_dataset(filesystem=pa_fs.SubTreeFileSystem(location.fs_path, location.fs))


def _commit_infos(log: Location) -> list[dict[str, Any]]:
    """Each commit's `commitInfo` with its `version`, newest first."""
    versions = sorted(
        (int(entry.name[:-5]) for entry in log.list(recursive=False) if COMMIT_FILE.match(entry.name)),
        reverse=True,
    )
    infos = []
    for version in versions:
        commit = log / f"{version:020d}.json"
        for number, line in enumerate(_commit_lines(commit), 1):
            try:
                action = json.loads(line) if line.strip() else {}
                info = action.get("commitInfo")
            except (ValueError, AttributeError) as exc:  # not JSON, or JSON that is not an action
                raise TableMissingError(
                    f"{commit}: line {number} is not a Delta log action ({type(exc).__name__}); the table "
                    "is damaged: restore the file, or rebuild the table by rerunning its stage"
                ) from None
            if info is not None:
                infos.append({**info, "version": version})
                break
    return infos


def _commit_lines(commit: Location) -> list[str]:
    try:
        return commit.read_text().splitlines()
    except UnicodeDecodeError:
        raise TableMissingError(f"{commit}: not UTF-8; the table is damaged") from None


def _data_file(root: Location, path: str) -> Location:
    """An add action's file: relative to the table root (ours), or absolute (other writers may)."""
    if URL.match(path) or path.startswith("/"):
        return Location.parse(path, root.settings)
    return root / urllib.parse.unquote(path)


class Lake(DeltaCommits):
    """Delta tables under one root. Table names are relative paths such as `demo/documents`."""

    def __init__(self, root: str | os.PathLike[str] | Location):
        self.root = Location.parse(root)
        self.spark_parquet = self.root.is_local

    # ----------------------------------------------------------------- naming
    def path(self, table: str) -> Location:
        """The table's root; refuses names that would leave the lake."""
        try:
            candidate = self.root / table
        except ValueError:
            raise ValueError(f"table name {table!r} escapes the lake at {self.root}") from None
        if candidate.url == self.root.url:
            raise ValueError(f"table name {table!r} names the lake root {self.root}, not a table")
        return candidate

    def exists(self, table: str) -> bool:
        return (self.path(table) / DELTA_LOG).is_dir()

    # A suggestion for a missing table looks at dataset/table names only, and at this many folders.
    SUGGEST_DEPTH = 2
    SUGGEST_ENTRIES = 5000

    def tables(self, max_depth: int | None = None, max_entries: int | None = None) -> list[str]:
        """Every Delta table under the root, as names relative to it.

        Walks folder by folder and stops at a table: listing the whole lake recursively would
        list every data file, which on object storage is one request per thousand of them.
        Folders starting with `_` (run records, staging areas) hold no tables.

        `max_depth` (parts of a name) and `max_entries` (folders looked at) bound the walk for an
        answer that must stay cheap, a suggestion: a lake pointed at /proc or a home folder would
        otherwise be walked whole. A bounded walk also follows no link and enters no other
        filesystem on local disk (/proc/self/root is the whole machine again), and passes over a
        folder it may not list.
        """
        bounded = max_depth is not None or max_entries is not None

        def device(folder: Location, follow: bool) -> int | None:
            """The local filesystem a folder is on; None for a link not followed (-1: not local)."""
            if not folder.is_local:
                return -1
            try:
                info = os.stat(folder.fs_path) if follow else os.lstat(folder.fs_path)
            except OSError:
                return None
            return None if stat.S_ISLNK(info.st_mode) else info.st_dev

        root_device = device(self.root, follow=True) if bounded else None
        found, pending, seen = [], collections.deque([(self.root, 1)]), 0
        while pending:
            folder, depth = pending.popleft()
            try:
                children = folder.children()
            except OSError:  # StorageError too: an unlistable folder (/proc/1) holds no suggestion
                if not bounded:
                    raise
                continue
            for child in children:
                seen += 1
                if max_entries is not None and seen > max_entries:
                    return sorted(found)
                if child.name.startswith("_") or (bounded and device(child, follow=False) != root_device):
                    continue
                if (child / DELTA_LOG).is_dir():
                    found.append(child.relative_to(self.root))
                elif max_depth is None or depth < max_depth:
                    pending.append((child, depth + 1))
        return sorted(found)

    # ---------------------------------------------------------------- reading
    def delta(self, table: str, version: int | None = None) -> DeltaTable:
        if not self.exists(table):
            raise self._missing(table)
        try:
            location = self.path(table)
            return DeltaTable(location.url, version=version, storage_options=location.delta_storage_options())
        except (DeltaError, TableNotFoundError, OSError) as exc:
            what = "cannot be read" if version is None else self._version_problem(table, version)
            raise TableMissingError(f"table {table!r} {what}: {without_backtrace(exc)}") from exc

    def _version_problem(self, table: str, version: int) -> str:
        """A version whose commit file is there but will not read is damaged, not missing: the user
        restores or rebuilds it rather than looks for a run that never wrote it."""
        if (self.path(table) / DELTA_LOG / f"{version:020d}.json").is_file():
            return f"has version {version}, but it cannot be read (a damaged log or data file)"
        return f"has no version {version}"

    def _missing(self, table: str) -> TableMissingError:
        """The error for a table that is not there, with the lake's closest name (a typo is the usual cause;
        listing the lake costs a listing, only on this error path)."""
        names = self.tables(max_depth=self.SUGGEST_DEPTH, max_entries=self.SUGGEST_ENTRIES)
        close = difflib.get_close_matches(table, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "run the stage that writes it first"
        return TableMissingError(f"no table {table!r} in lake {self.root}; {hint}")

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
        log = self.path(table) / DELTA_LOG / f"{version:020d}.json"
        if not log.is_file():
            raise TableMissingError(f"table {table!r} has no commit file for version {version}")
        total = 0
        for line in log.read_text().splitlines():
            action = json.loads(line).get("add")
            if action and action.get("stats"):
                total += int(json.loads(action["stats"]).get("numRecords", 0))
        return total

    def history(self, table: str) -> list[dict[str, Any]]:
        """Commits newest first, with refinery's metadata unprefixed under `meta`.

        Read from the commit files through the I/O layer, not with delta-rs's `history()`: that
        call holds the GIL while it lists and fetches over the network, which stalls every other
        thread of the process (run heartbeats, the web app's requests) for as long as the store
        takes to answer.
        """
        if not self.exists(table):
            raise self._missing(table)
        out = []
        for commit in _commit_infos(self.path(table) / DELTA_LOG):
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
        dt = self.delta(table, version)
        root = self.path(table)
        actions = pa.table(dt.get_add_actions(flatten=True)).select(["path", "size_bytes"]).to_pylist()
        files = [(_data_file(root, a["path"]), int(a["size_bytes"])) for a in actions]
        schema = pa.schema(dt.schema().to_arrow())
        if self.spark_parquet and files:
            from pyspark.sql.pandas.types import from_arrow_schema

            return spark.read.schema(from_arrow_schema(schema)).parquet(*(f.url for f, _ in files))
        return read_dataframe(spark, files, schema)

    def dataset(self, table: str, version: int | None = None) -> Any:
        """A pyarrow dataset over a snapshot, for bounded driver-side reads (web app, reports)."""
        return snapshot_dataset(self.delta(table, version), self.path(table))
