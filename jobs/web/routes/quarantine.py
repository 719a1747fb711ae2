"""Quarantine: records by reason; excerpts (raw input) withheld wherever the dataset is redacted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from jobs.web.site import PageNo, Site, first_readable


def quarantine_router(site: Site) -> APIRouter:
    router = APIRouter()
    view = site.view

    @router.get("/quarantine", response_class=HTMLResponse)
    def quarantine_page(
        table: str | None = None,
        version: int | None = None,
        reason: str | None = None,
        page_no: PageNo = 0,
    ) -> HTMLResponse:
        return site.page("quarantine.html", **api_quarantine(table, version, reason, page_no))

    @router.get("/api/quarantine")
    def api_quarantine(
        table: str | None = None,
        version: int | None = None,
        reason: str | None = None,
        page_no: PageNo = 0,
    ) -> dict[str, Any]:
        candidates = [t for t in view.tables() if t.endswith("/quarantine")]

        def show(table: str) -> dict[str, Any]:
            table, pinned = site.pinned(table, version)
            redacted = view.redacted_sibling(table, pinned)
            return {
                "table": table,
                "version": pinned,
                "tables": candidates,
                "reason": reason,
                "redacted": redacted,
                "reasons": view.distinct(table, pinned, "reason"),
                "rows": view.quarantine(table, pinned, reason or None, page_no, excerpts=redacted is None),
            }

        if table:
            return {**show(table), "passed_over": []}
        return first_readable(candidates, show, "this lake has no quarantine table yet")

    return router
