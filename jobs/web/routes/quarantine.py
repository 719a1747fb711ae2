"""Quarantine: records by reason; excerpts (raw input) withheld wherever the dataset is redacted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from jobs.web.site import PageNo, Site


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
        table, version = site.pinned(table or (candidates[0] if candidates else None), version)
        redacted = view.redacted_sibling(table, version)
        return {
            "table": table,
            "version": version,
            "tables": candidates,
            "reason": reason,
            "redacted": redacted,
            "reasons": view.distinct(table, version, "reason"),
            "rows": view.quarantine(table, version, reason or None, page_no, excerpts=redacted is None),
        }

    return router
