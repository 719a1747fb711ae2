"""Images: the gallery with duplicate groups, and bounded PNG thumbnails."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from jobs.web.site import PageNo, Site, first_readable, required


def images_router(site: Site) -> APIRouter:
    router = APIRouter()
    view = site.view

    @router.get("/images", response_class=HTMLResponse)
    def images_page(
        table: str | None = None, version: int | None = None, page_no: PageNo = 0
    ) -> HTMLResponse:
        return site.page("images.html", **api_images(table, version, page_no))

    @router.get("/api/images")
    def api_images(
        table: str | None = None, version: int | None = None, page_no: PageNo = 0
    ) -> dict[str, Any]:
        def show(table: str) -> dict[str, Any]:
            table, pinned = site.pinned(table, version)
            return {
                "table": table,
                "version": pinned,
                "images": view.images(table, pinned, page_no),
                "groups": view.image_groups(table, pinned),
            }

        if table:
            return {**show(table), "passed_over": []}
        candidates = [t for t in view.tables() if t.endswith("/images")]
        return first_readable(candidates, show, "this lake has no images table yet")

    @router.get("/thumb")
    def thumbnail(table: str | None = None, version: int | None = None, id: str = "") -> Response:
        table, version = site.pinned(table, version)
        id = required("id", id, "the image's image_id")
        return Response(view.thumbnail(table, version, id), media_type="image/png")

    return router
