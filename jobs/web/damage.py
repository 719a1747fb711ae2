"""Damaged tables, said once for every route: a table the lake lists but cannot read is `Damaged`.

A table's Delta log can hold a commit that is not JSON (a disk filled mid-write, a hand edit), and
its data files can be gone (a copy that left them out, a cleanup run on the wrong folder). delta-rs
then raises TableMissingError and DuckDB an IOException, which the app answered with a bare 500
"Internal Server Error": for every page on the table, for lineage on any document of its dataset,
and for the whole lake's listing. Here both become `Damaged`, carrying what broke and what to do:
a route on the damaged table answers the app's damaged page; a route over many tables (the
listing, lineage, the default table of a page) catches it per table, marks that one and goes on.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from jobs.web.errors import Damaged, NotFound
from jobs.web.public_record import scrub
from pipelines.framework.lake import Lake, TableMissingError, without_backtrace

# What reading a snapshot's data files raises when one is missing or is not Parquet: DuckDB's own
# reader, or a pyarrow dataset (DuckDB wraps what the dataset raised mid-scan in InvalidInput).
READ_ERRORS = (duckdb.IOException, duckdb.InvalidInputException, OSError, pa.ArrowException)


class WebLake(Lake):
    """The lake as the web app reads it: a listed table whose log cannot be read raises `Damaged`.

    Every read of a table's log goes through `delta` (schema, version, row counts) or `history`, so
    overriding those two covers them all. An unlisted table is NotFound, as is an old version that a
    readable table no longer has (its log was cleaned up).
    """

    def delta(self, table: str, version: int | None = None) -> DeltaTable:
        try:
            return super().delta(table, version)
        except TableMissingError as exc:
            if not self.exists(table):
                raise NotFound(str(exc)) from None
            if version is not None and self._latest_readable(table):
                raise NotFound(str(exc)) from None
            raise Damaged(damage(self, table, exc)) from None

    def history(self, table: str) -> list[dict[str, Any]]:
        try:
            return super().history(table)
        except TableMissingError as exc:
            if not self.exists(table):
                raise NotFound(str(exc)) from None
            raise Damaged(damage(self, table, exc)) from None

    def _latest_readable(self, table: str) -> bool:
        try:
            super().delta(table)
        except TableMissingError:
            return False
        return True


def damage(lake: Lake, table: str, cause: BaseException, version: int | None = None) -> str:
    """What broke in `table` and what to do, the lake's absolute path shortened (pages never show it)."""
    why = without_backtrace(cause).removeprefix(f"table {table!r} cannot be read: ") or type(cause).__name__
    what = f"table {table!r}" if version is None else f"table {table!r} at version {version}"
    message = (
        f"{what} cannot be read; the lake holds it but its files are damaged: {why}. "
        f"Restore the table's folder from a backup or copy of the lake, or rebuild it: {writer(lake, table)}. "
        "The lake's other tables are not affected."
    )
    return scrub(message, str(lake.root), secrets=False)


def writer(lake: Lake, table: str) -> str:
    """How to rebuild the table: rerun the stage that last wrote it, named from its log when readable."""
    try:
        meta = Lake.history(lake, table)[0]["meta"]
    except (TableMissingError, OSError, ValueError, LookupError):
        return "rerun the job stage that writes it"
    stage, run = meta.get("stage_id") or meta.get("stage"), meta.get("run_id")
    if not stage:
        return "rerun the job stage that writes it"
    return f"rerun stage {stage!r} of its job" + (f" (it was last written by run {run!r})" if run else "")
