"""Documents: the browser (dropped and kept side by side, filters) and one document; text only where redacted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from jobs.web.data import PII_COLUMNS, LakeView
from jobs.web.errors import Damaged, NotFound
from jobs.web.lineage import lineage
from jobs.web.site import PageNo, Site, first_readable, required
from jobs.web.sql import KEPT, Filters
from pipelines.framework.drop_reason import DROP_REASON


@dataclass(frozen=True)
class DocsQuery(Filters):
    """The document browser's query parameters (the filters plus where to look), shared by the
    page and its JSON twin."""

    table: str | None = None
    version: int | None = None
    page_no: PageNo = 0


def documents_router(site: Site) -> APIRouter:
    router = APIRouter()
    view = site.view

    @router.get("/docs", response_class=HTMLResponse)
    def docs_page(q: Annotated[DocsQuery, Depends()]) -> HTMLResponse:
        return site.page("docs.html", **api_docs(q))

    @router.get("/api/docs")
    def api_docs(q: Annotated[DocsQuery, Depends()]) -> dict[str, Any]:
        """The asked table, or the first default one that can be read: a damaged default is passed
        over (and named) rather than hiding every other table's documents behind its error."""
        if q.table:
            return {**documents_page(site, q, q.table), "passed_over": []}
        return first_readable(
            default_documents_tables(view),
            lambda table: documents_page(site, q, table),
            "this lake has no readable documents table (one with a text column) yet",
        )

    @router.get("/doc", response_class=HTMLResponse)
    def doc_page(table: str | None = None, version: int | None = None, id: str = "") -> HTMLResponse:
        return site.page("doc.html", **api_doc(table, version, id))

    @router.get("/api/doc")
    def api_doc(table: str | None = None, version: int | None = None, id: str = "") -> dict[str, Any]:
        table, version = site.pinned(table, version)
        id = required("id", id, "the document's doc_id (or an image's image_id)")
        redacted = view.redacted_sibling(table, version)
        return {
            "table": table,
            "version": version,
            "redacted": redacted,
            "row": view.document(table, version, id, text=redacted is None),
        }

    return router


def lineage_router(site: Site) -> APIRouter:
    """One document across its dataset's tables: where it is, and which stage dropped it."""
    router = APIRouter()

    @router.get("/lineage", response_class=HTMLResponse)
    def lineage_page(table: str | None = None, id: str = "") -> HTMLResponse:
        return site.page("lineage.html", **api_lineage(table, id))

    @router.get("/api/lineage")
    def api_lineage(table: str | None = None, id: str = "") -> dict[str, Any]:
        table = site.view.check_table(table)
        id = required("id", id, "the document's doc_id (or an image's image_id)")
        return {"table": table, "id": id, **lineage(site.view, table, id)}

    return router


def documents_page(site: Site, q: DocsQuery, table: str | None) -> dict[str, Any]:
    """One page of the document browser on `table` (checked), dropped and kept side by side."""
    view, page_no = site.view, q.page_no
    table, version = site.pinned(table, q.version)
    flt = filters(q.reason, q.lang, q.source, q.column, q.low, q.high)
    redacted = view.redacted_sibling(table, version)
    names = [c["name"] for c in view.schema(table, version)]
    numeric = view.numeric_columns(table, version)
    panes = (
        [("dropped", False), ("kept", True)]
        if DROP_REASON in names and flt.reason in (None,)
        else [("matching", None)]
    )
    return {
        "table": table,
        "version": version,
        "filters": flt.__dict__,
        "kept_value": KEPT,
        "redacted": redacted,
        "panes": {
            name: view.documents(table, version, flt, page_no, kept, text=redacted is None)
            for name, kept in panes
        },
        "menus": {c: view.distinct(table, version, c) for c in (DROP_REASON, "lang", "source") if c in names},
        "numeric": numeric,
        "signals": [n for n in numeric if n not in ("width", "height")],
        "page": page_no,
    }


def default_documents_tables(view: LakeView) -> list[str]:
    """The tables a bare /docs may show, in order: redacted ones, then the other documents tables.

    Tables whose log cannot be read are left out (and those whose data cannot, passed over by the
    caller): one damaged table must not take down the page for the lake's others; it is still
    reachable by name, and shows the damaged page.
    """
    readable = {}
    for t in view.tables():
        try:
            readable[t] = view.lake.arrow_schema(t).names
        except (Damaged, NotFound):
            continue
    redacted = [t for t, names in readable.items() if any(c in names for c in PII_COLUMNS)]
    return redacted + [t for t, names in readable.items() if "text" in names and t not in redacted]


def filters(
    reason: str | None,
    lang: str | None,
    source: str | None,
    column: str | None,
    low: float | None,
    high: float | None,
) -> Filters:
    """The filters, with the empty strings an unset form field sends read as no filter."""
    return Filters(reason or None, lang or None, source or None, column or None, low, high)
