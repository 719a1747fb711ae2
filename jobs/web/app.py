"""The refinery web app: runs, run reports, datasets, documents, images and quarantine, read-only.

Server-rendered with Jinja2 (autoescape on for every template) and inline SVG
charts, so pages need no JavaScript; a strict Content-Security-Policy
(`script-src 'none'`) makes sure that none runs even if a hostile document slipped
past escaping. There is no endpoint that changes state: every route is a GET.
Table names and run ids from a request are checked against the lake's own
listing (anything else, `../` included, is a 404); every other bad parameter is a
4xx with a message. Only the app's own loopback Host names are answered (DNS
rebinding), run records are served without secrets or host details, and a page
number is bounded so that no request can ask for an unbounded scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from jobs.web.data import LakeView
from jobs.web.errors import BadRequest, Busy, Damaged, NotFound
from jobs.web.hosts import host_allowed, trusted_hosts
from jobs.web.public_record import scrub
from jobs.web.query_pool import Limits
from jobs.web.render import STATIC_DIR, environment
from jobs.web.routes.documents import documents_router, lineage_router
from jobs.web.routes.images import images_router
from jobs.web.routes.quarantine import quarantine_router
from jobs.web.routes.runs import runs_router
from jobs.web.routes.tables import tables_router
from jobs.web.site import Site
from pipelines.framework.storage import Location

CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ROUTERS = (runs_router, tables_router, documents_router, lineage_router, images_router, quarantine_router)
# Errors the data layer raises for a bad request or a damaged file, and the status each is answered with.
ERROR_STATUS = {NotFound: 404, BadRequest: 400, Busy: 503, Damaged: 500}
# The heading of each one's page: a damaged table is not "not found", and its page says what to do.
ERROR_TITLE = {
    NotFound: "Not found",
    BadRequest: "Bad request",
    Busy: "Busy",
    Damaged: "Damaged file in the lake",
}


def create_app(
    lake_root: str | Path | Location,
    port: int | None = None,
    allowed_hosts: Iterable[str] = (),
    limits: Limits | None = None,
) -> FastAPI:
    """The app for one lake folder, answering Host `127.0.0.1`/`localhost`/`[::1]` (with `port` when
    given) and `allowed_hosts`."""
    site = Site(LakeView(lake_root, limits), environment())
    hosts = trusted_hosts(port, allowed_hosts)
    app = FastAPI(title="refinery", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.view = site.view
    for router in ROUTERS:
        app.include_router(router(site))

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        if not host_allowed(request.headers.get("host"), hosts):
            response: Response = JSONResponse(
                {"error": "untrusted Host header: open the app by the address `refinery serve` printed"},
                status_code=421,
            )
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def error(request: Request, exc: Exception) -> Response:
        kind = next(kind for kind in ERROR_STATUS if isinstance(exc, kind))
        # A damaged file's message names its path: pages show the lake's folder, never its absolute path.
        message = scrub(str(exc), str(site.view.lake.root), secrets=False) if kind is Damaged else str(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=ERROR_STATUS[kind])
        return site.page("error.html", ERROR_STATUS[kind], message=message, title=ERROR_TITLE[kind])

    for kind in ERROR_STATUS:
        app.add_exception_handler(kind, error)

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "lake": site.view.lake.root.name,
            "queries_in_flight": len(site.view.pool.running()),
        }

    return app
