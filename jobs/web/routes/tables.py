"""Tables: the listing, one table version's report and schema, and two versions compared."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from jobs.reasons import reason_descriptions
from jobs.web.data import LakeView, TableReport
from jobs.web.errors import Damaged, NotFound
from jobs.web.public_record import scrub
from jobs.web.site import Site


def tables_router(site: Site) -> APIRouter:
    router = APIRouter()
    view = site.view

    @router.get("/tables", response_class=HTMLResponse)
    def tables_page() -> HTMLResponse:
        return site.page("tables.html", tables=api_tables())

    @router.get("/api/tables")
    def api_tables() -> list[dict[str, Any]]:
        return [table_summary(view, t) for t in view.tables()]

    @router.get("/dataset", response_class=HTMLResponse)
    def dataset_page(table: str | None = None, version: int | None = None) -> HTMLResponse:
        return site.page("dataset.html", **api_dataset(table, version))

    @router.get("/api/dataset")
    def api_dataset(table: str | None = None, version: int | None = None) -> dict[str, Any]:
        table, version = site.pinned(table, version)
        report, run_id, damaged = shown_report(view, table, version)
        return {
            "table": table,
            "version": version,
            "rows": view.lake.num_records(table, version),
            "schema": view.schema(table, version),
            "versions": view.versions(table),
            "report": report,
            "report_run": run_id,
            "damaged_reports": damaged,
            "reasons": run_reasons(view, run_id),
        }

    @router.get("/compare", response_class=HTMLResponse)
    def compare_page(table: str | None = None, a: int | None = None, b: int | None = None) -> HTMLResponse:
        return site.page("compare.html", **api_compare(table, a, b))

    @router.get("/api/compare")
    def api_compare(table: str | None = None, a: int | None = None, b: int | None = None) -> dict[str, Any]:
        table = view.check_table(table)
        latest = view.check_version(table, None)
        a = view.check_version(table, a if a is not None else max(latest - 1, 0))
        b = view.check_version(table, b if b is not None else latest)
        sides = [version_side(view, table, a), version_side(view, table, b)]
        return {
            "table": table,
            "a": sides[0],
            "b": sides[1],
            "versions": view.versions(table),
            "diff": compare(sides[0], sides[1]),
        }

    return router


def table_summary(view: LakeView, table: str) -> dict[str, Any]:
    """A table's latest version and row count, or why it cannot be read (`damaged`): the listing
    names a damaged table and goes on with the others instead of failing for the whole lake."""
    try:
        version = view.lake.version(table)
        return {
            "table": table,
            "version": version,
            "rows": view.lake.num_records(table, version),
            "damaged": None,
        }
    except (Damaged, NotFound) as exc:  # NotFound: removed between the listing and the read
        return {"table": table, "version": None, "rows": None, "damaged": str(exc)}


def run_reasons(view: LakeView, run_id: str | None) -> dict[str, str]:
    """The drop reasons' lines of the run whose report a page shows; none without a readable record."""
    if run_id is None:
        return {}
    try:
        return reason_descriptions(view.run(run_id))
    except NotFound:
        return {}


def shown_report(view: LakeView, table: str, version: int) -> TableReport:
    """The version's stored report for a page, the damaged reports' messages with the lake's path shortened."""
    found = view.table_report(table, version)
    return found._replace(damaged=[scrub(d, str(view.lake.root), secrets=False) for d in found.damaged])


def version_side(view: LakeView, table: str, version: int) -> dict[str, Any]:
    """One side of a comparison: a checked version's rows, schema and stored report."""
    report, run_id, damaged = shown_report(view, table, version)
    return {
        "version": version,
        "rows": view.lake.num_records(table, version),
        "schema": view.schema(table, version),
        "report": report,
        "run": run_id,
        "damaged_reports": damaged,
    }


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Row, column and distribution differences between two versions (distributions need both reports)."""
    cols_a = {c["name"]: c["type"] for c in a["schema"]}
    cols_b = {c["name"]: c["type"] for c in b["schema"]}
    diff: dict[str, Any] = {
        "rows": b["rows"] - a["rows"],
        "added_columns": sorted(set(cols_b) - set(cols_a)),
        "removed_columns": sorted(set(cols_a) - set(cols_b)),
        "breakdowns": {},
        "histograms": [],
    }
    ra, rb = a["report"], b["report"]
    if not (ra and rb):
        return diff
    for column in dict.fromkeys([*ra["breakdowns"], *rb["breakdowns"]]):
        va = {v["value"]: v["docs"] for v in ra["breakdowns"].get(column, {}).get("values", [])}
        vb = {v["value"]: v["docs"] for v in rb["breakdowns"].get(column, {}).get("values", [])}
        diff["breakdowns"][column] = [
            {"value": k, "a": va.get(k, 0), "b": vb.get(k, 0), "delta": vb.get(k, 0) - va.get(k, 0)}
            # Ties in order of value: a set's order changes between processes (string hashing).
            for k in sorted(set(va) | set(vb), key=lambda k: (-(vb.get(k, 0) + va.get(k, 0)), str(k)))
        ]
    hist_a = {h["column"]: h for h in ra["histograms"]}
    diff["histograms"] = [(hist_a[h["column"]], h) for h in rb["histograms"] if h["column"] in hist_a]
    return diff
