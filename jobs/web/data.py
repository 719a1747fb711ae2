"""Bounded reads of the lake for the web app: DuckDB over a pinned Delta snapshot.

Why DuckDB here and Spark in `jobs.report`: a page needs a few dozen rows,
filtered, in well under a second, from a process that must not start a JVM.
DuckDB scans the Parquet files of the pinned snapshot (listed by the Delta log), reading
only the columns asked for, pushing filters down, and stopping at LIMIT: no query loads a table into memory.
Aggregates over whole tables (the charts) are precomputed by Spark into the run
reports and only read here.

Every table name and version from a request is checked against the lake's own
listing before it is used, so a crafted name (`../x`) never reaches the disk. A listed
table that cannot be read (its log or its data files damaged) raises `Damaged` from
every read here (jobs/web/damage.py), never an error the app would answer with a bare 500.

One request must not be able to starve the others: queries run through the
limits of `jobs.web.query_pool`, and counts stop at a cap.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, NamedTuple

import pyarrow as pa

from jobs.report import REPORT_NAME, ReportUnreadable, load_run_report, read_report, table_key
from jobs.web.damage import READ_ERRORS, WebLake, damage
from jobs.web.errors import BadRequest, Damaged, NotFound
from jobs.web.query_pool import Limits, QueryPool
from jobs.web.sql import Filters, quote, text_prefix, where_clause
from jobs.web.thumbnails import thumbnail
from pipelines.framework.lake import snapshot_dataset
from pipelines.framework.runrecord import RUNS_DIR, RunRecord, RunRecordUnreadable, list_runs
from pipelines.framework.storage import Location

PAGE_SIZE = 20
EXCERPT_CHARS = 600
FULL_TEXT_CHARS = 200_000
PII_COLUMNS = ("pii_spans", "pii_counts")
# Columns that hold corpus text: withheld from a table version that is not the redacted one.
TEXT_COLUMNS = ("text", "excerpt")
NUMERIC_TYPES = ("double", "float", "int64", "int32", "int16", "int8")


def has_binary(data_type: pa.DataType) -> bool:
    """Whether a column holds bytes anywhere inside (a `bytes` column, the `minhash` struct): never JSON."""
    binary = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)
    if any(is_kind(data_type) for is_kind in binary):
        return True
    return any(has_binary(data_type.field(i).type) for i in range(data_type.num_fields))


class TableReport(NamedTuple):
    """A table version's stored statistics, the run whose report held them, and the damaged reports skipped."""

    report: dict[str, Any] | None
    run_id: str | None
    damaged: list[str]


class LakeView:
    """Read-only access to one lake for the web app."""

    def __init__(self, root: str | os.PathLike[str] | Location, limits: Limits | None = None):
        self.lake = WebLake(root)
        # DuckDB reads local Parquet itself; on object storage it would need its httpfs extension
        # (a download at run time), so there the snapshot is scanned through pyarrow's filesystem.
        self.local = Location.parse(self.lake.root).is_local
        self.pool = QueryPool(limits or Limits())

    # ------------------------------------------------------------- naming
    def tables(self) -> list[str]:
        return self.lake.tables()

    def check_table(self, table: str | None) -> str:
        """The table, once found in the lake's listing; a missing name is a bad request, as for any
        required parameter, not a 404 for a table called None."""
        if not table:
            raise BadRequest("table: required; name one of the lake's tables (listed at /tables)")
        if table not in self.tables():
            raise NotFound(f"no table {table!r} in this lake")
        return table

    def check_version(self, table: str, version: int | None) -> int:
        latest = self.lake.version(self.check_table(table))
        if version is None:
            return int(latest)
        if not 0 <= version <= latest:
            raise NotFound(f"table {table!r} has no version {version}")
        return version

    def run(self, run_id: str) -> RunRecord:
        """The run, once its id is found in the lake's listing (one listing: no record is read twice)."""
        if run_id not in {loc.name for loc in (Location.parse(self.lake.root) / RUNS_DIR).children()}:
            raise NotFound(f"no run {run_id!r}")
        try:
            return RunRecord.load(self.lake.root, run_id)
        except FileNotFoundError as exc:
            raise NotFound(f"no run {run_id!r}") from exc
        except RunRecordUnreadable as exc:  # damaged, or another run's record copied into this folder
            raise Damaged(str(exc)) from None

    def runs(self) -> list[RunRecord]:
        return list_runs(self.lake.root)

    def report(self, run_id: str) -> dict[str, Any] | None:
        """The run's stored report, None when not computed; Damaged when the stored file cannot be read."""
        self.run(run_id)
        try:
            return load_run_report(self.lake.root, run_id)
        except ReportUnreadable as exc:
            raise Damaged(str(exc)) from None

    # ----------------------------------------------------------- reports
    def table_report(self, table: str, version: int) -> TableReport:
        """The stored report of one table version, from the newest run report holding it.

        A damaged report newer than the one used is named in `damaged`: it may have held a later view
        of this version, and skipping it without a word would show older numbers as current.
        """
        key, damaged = table_key(table, version), []
        runs = Location.parse(self.lake.root) / RUNS_DIR
        for entry in sorted(runs.glob(f"*/{REPORT_NAME}"), key=lambda e: e.mtime or 0.0, reverse=True):
            report = _stored_report(entry.location, entry.mtime, entry.size)
            if isinstance(report, str):
                damaged.append(report)
            elif report and key in report.get("tables", {}):
                return TableReport(report["tables"][key], report["run_id"], damaged)
        return TableReport(None, None, damaged)

    def versions(self, table: str) -> list[dict[str, Any]]:
        history = self.lake.history(self.check_table(table))
        return [
            {
                "version": int(c["version"]),
                "timestamp": c.get("timestamp"),
                "rows": self.lake.num_records(table, int(c["version"])),
                "stage": c["meta"].get("stage_id") or c["meta"].get("stage", ""),
                "run_id": c["meta"].get("run_id", ""),
            }
            for c in history
        ]

    def schema(self, table: str, version: int) -> list[dict[str, str]]:
        return [{"name": f.name, "type": str(f.type)} for f in self.lake.arrow_schema(table, version)]

    def redacted_sibling(self, table: str, version: int) -> str | None:
        """The table whose latest version holds this dataset's redacted text, when `table@version` does not.

        Decided for the pinned version: a PII stage that wrote over its input table leaves unredacted
        older versions of the redacted table itself, and those must be withheld like a raw sibling.
        A sibling whose log cannot be read may be the redacted table: without a readable one it is
        named instead (its link leads to the damaged page), so that damage never lets raw text show.
        """
        if self.has_pii(table, version):
            return None
        if self.has_pii(table):
            return table
        dataset, unreadable = table.rsplit("/", 1)[0], []
        for other in self.tables():
            if other == table or other.rsplit("/", 1)[0] != dataset:
                continue
            try:
                if self.has_pii(other):
                    return other
            except Damaged:
                unreadable.append(other)
        return unreadable[0] if unreadable else None

    def has_pii(self, table: str, version: int | None = None) -> bool:
        """Whether the table at `version` (default latest) carries PII columns (its text is the redacted one)."""
        return any(c in self.lake.arrow_schema(table, version).names for c in PII_COLUMNS)

    def numeric_columns(self, table: str, version: int) -> list[str]:
        return [c["name"] for c in self.schema(table, version) if c["type"] in NUMERIC_TYPES]

    # ----------------------------------------------------------- queries
    def query(self, sql: str, params: list[Any], table: str, version: int) -> list[dict[str, Any]]:
        """Run `sql` with the pinned snapshot as the view `snap`, on a cursor of its own.

        DuckDB reads the snapshot's Parquet files itself (projection and filter pushdown, LIMIT stops
        the scan, and the scan's buffers count against the memory limit). A partitioned table, one
        with deletion vectors, or any table on object storage is scanned through a pyarrow dataset
        instead (DuckDB still projects, filters and stops at LIMIT over it).
        """
        delta = self.lake.delta(table, version)
        try:
            with self.pool.cursor() as cur:
                files = delta.file_uris()
                if not self.local or delta.metadata().partition_columns or delta.protocol().reader_features:
                    cur.register("snap", snapshot_dataset(delta, self.lake.path(table)))
                elif files:
                    cur.register("snap", cur.read_parquet(files, union_by_name=True))
                else:
                    cur.register("snap", pa.schema(delta.schema().to_arrow()).empty_table())
                return self.pool.run(cur, sql, params)
        except READ_ERRORS as exc:  # a data file missing or not Parquet
            raise Damaged(damage(self.lake, table, exc, version)) from None

    def count(self, table: str, version: int, where: str = "", params: list[Any] | None = None) -> int:
        """Matching rows, counted up to `max_count + 1` at most (the caller reports "more than")."""
        cap = self.pool.limits.max_count
        sql = f"SELECT count(*) AS n FROM (SELECT 1 FROM snap{where} LIMIT ?)"
        return int(self.query(sql, [*(params or []), cap + 1], table, version)[0]["n"])

    def _counted(self, n: int, page: int, page_size: int) -> dict[str, Any]:
        cap = self.pool.limits.max_count
        return {"total": min(n, cap), "more": n > cap, "page": page, "page_size": page_size}

    def distinct(self, table: str, version: int, column: str, limit: int = 200) -> list[dict[str, Any]]:
        """Values of a low-cardinality column with their counts (for filter menus)."""
        if column not in self.lake.arrow_schema(table, version).names:
            return []
        # Ties in order of value, so that a menu reads the same on every load.
        sql = (
            f"SELECT {quote(column)} AS value, count(*) AS n FROM snap GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?"
        )
        return self.query(sql, [limit], table, version)

    def documents(
        self,
        table: str,
        version: int,
        filters: Filters,
        page: int,
        kept: bool | None = None,
        text: bool = True,
    ) -> dict[str, Any]:
        """One page of rows with an excerpt of the text (or none when `text` is False), and the match count."""
        schema = self.lake.arrow_schema(table, version)
        names = schema.names
        if filters.column and filters.column not in self.numeric_columns(table, version):
            raise BadRequest(
                f"column: {filters.column!r} is not a numeric column of {table}@{version}; "
                f"use one of {self.numeric_columns(table, version)}"
            )
        shown = [
            f.name
            for f in schema
            if f.name not in ("text", "bytes", *PII_COLUMNS)
            and (text or f.name not in TEXT_COLUMNS)
            and not str(f.type).startswith(("list", "map", "struct"))
            and not has_binary(f.type)
        ]
        select = [quote(n) for n in shown]
        select += text_prefix(names, "text", EXCERPT_CHARS if text else 0, "excerpt")
        where, params = where_clause(names, filters, kept)
        total = self.count(table, version, where, params)
        rows = self.query(
            f"SELECT {', '.join(select)} FROM snap{where} LIMIT ? OFFSET ?",
            [*params, PAGE_SIZE, page * PAGE_SIZE],
            table,
            version,
        )
        for r in rows:
            r["truncated"] = (r.get("text_chars") or 0) > EXCERPT_CHARS
        return {**self._counted(total, page, PAGE_SIZE), "rows": rows}

    def document(self, table: str, version: int, ident: str, text: bool = True) -> dict[str, Any]:
        """One row by its id column, text capped at FULL_TEXT_CHARS, binary columns left out."""
        schema = self.lake.arrow_schema(table, version)
        id_col = id_column(table, schema.names)
        cols = [
            quote(f.name)
            for f in schema
            if f.name != "text" and (text or f.name not in TEXT_COLUMNS) and not has_binary(f.type)
        ]
        cols += text_prefix(schema.names, "text", FULL_TEXT_CHARS if text else 0, "text")
        rows = self.query(
            f"SELECT {', '.join(cols)} FROM snap WHERE {id_col} = ? LIMIT 1",
            [ident],
            table,
            version,
        )
        if not rows:
            raise NotFound(f"no row {ident!r} in {table}@{version}")
        return rows[0]

    def images(self, table: str, version: int, page: int) -> dict[str, Any]:
        self._require(table, version, "image_id")
        total = self.count(table, version)
        cols = [
            c
            for c in ("image_id", "source", "format", "width", "height", "caption", "sha256", "uri")
            if c in self.lake.arrow_schema(table, version).names
        ]
        rows = self.query(
            f"SELECT {', '.join(cols)}, octet_length(bytes) AS size FROM snap LIMIT ? OFFSET ?",
            [PAGE_SIZE * 2, page * PAGE_SIZE * 2],
            table,
            version,
        )
        return {**self._counted(total, page, PAGE_SIZE * 2), "rows": rows}

    def image_groups(self, table: str, version: int, limit: int = 20) -> list[dict[str, Any]]:
        """Groups of images with equal content hash (or duplicate cluster), largest first."""
        names = self.lake.arrow_schema(table, version).names
        key = next((c for c in ("dup_cluster", "phash", "sha256") if c in names), None)
        if key is None or "image_id" not in names:
            return []
        sql = (
            f"SELECT {quote(key)} AS key, count(*) AS size, list(image_id ORDER BY image_id)[1:8] AS members "
            f"FROM snap WHERE {quote(key)} IS NOT NULL GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC, 1 LIMIT ?"
        )
        return [{**g, "key": str(g["key"]), "by": key} for g in self.query(sql, [limit], table, version)]

    def thumbnail(self, table: str, version: int, image_id: str) -> bytes:
        self._require(table, version, "image_id")
        rows = self.query("SELECT bytes FROM snap WHERE image_id = ? LIMIT 1", [image_id], table, version)
        if not rows or rows[0]["bytes"] is None:
            raise NotFound(f"no image {image_id!r} in {table}@{version}")
        return thumbnail(rows[0]["bytes"], image_id)

    def quarantine(
        self, table: str, version: int, reason: str | None, page: int, excerpts: bool = True
    ) -> dict[str, Any]:
        """One page of quarantine rows; excerpts (raw input) only when `excerpts`, else their length."""
        self._require(table, version, "reason")
        schema = self.lake.arrow_schema(table, version)
        where, params = (" WHERE reason = ?", [reason]) if reason else ("", [])
        total = self.count(table, version, where, params)
        cols = [quote(f.name) for f in schema if f.name != "excerpt" and not has_binary(f.type)]
        cols += text_prefix(schema.names, "excerpt", EXCERPT_CHARS if excerpts else 0, "excerpt")
        rows = self.query(
            f"SELECT {', '.join(cols)} FROM snap{where} LIMIT ? OFFSET ?",
            [*params, PAGE_SIZE, page * PAGE_SIZE],
            table,
            version,
        )
        return {**self._counted(total, page, PAGE_SIZE), "rows": rows}

    def _require(self, table: str, version: int, column: str) -> list[str]:
        names = self.lake.arrow_schema(table, version).names
        if column not in names:
            raise NotFound(f"table {table!r} has no {column!r} column")
        return names


def id_column(table: str, names: list[str]) -> str:
    """The column that names a row: documents' doc_id, images' image_id."""
    found = next((c for c in ("doc_id", "image_id") if c in names), None)
    if found is None:
        raise NotFound(f"table {table!r} has no id column")
    return found


@lru_cache(maxsize=64)
def _stored_report(location: Location, mtime: float | None, size: int) -> dict[str, Any] | str | None:
    """A stored report or why it cannot be read, cached until the file changes (the key has its mtime and size).

    None for a report removed between the listing and the read (a purge): absent, not damaged.
    """
    try:
        return read_report(location, location.parent.name)
    except FileNotFoundError:
        return None
    except ReportUnreadable as exc:
        return str(exc)
