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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from jobs.web.data import KEPT, BadRequest, Busy, Filters, LakeView, Limits, NotFound
from jobs.web.hosts import host_allowed, trusted_hosts
from jobs.web.public_record import public_record, public_report
from jobs.web.render import STATIC_DIR, environment

# The last page anyone may ask for: OFFSET is at most MAX_PAGE * page size rows (a filter narrows further).
MAX_PAGE = 500
PageNo = Annotated[
    int,
    Query(alias="page", ge=0, le=MAX_PAGE, description=f"0 to {MAX_PAGE}; narrow the filters to see more"),
]


@dataclass(frozen=True)
class DocsQuery(Filters):
    """The document browser's query parameters (the filters plus where to look), shared by the
    page and its JSON twin."""

    table: str | None = None
    version: int | None = None
    page_no: PageNo = 0


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


def create_app(
    lake_root: str | Path,
    port: int | None = None,
    allowed_hosts: Iterable[str] = (),
    limits: Limits | None = None,
) -> FastAPI:
    """The app for one lake folder, answering Host `127.0.0.1`/`localhost`/`[::1]` (with `port` when
    given) and `allowed_hosts`."""
    view = LakeView(lake_root, limits)
    env = environment()
    hosts = trusted_hosts(port, allowed_hosts)
    app = FastAPI(title="refinery", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.view = view

    def error(request: Request, message: str, status: int) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(
            env.get_template("error.html").render(message=message, lake=view.lake.root.name), status
        )

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

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return error(request, str(exc), 404)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return error(request, str(exc), 400)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> Response:
        return error(request, str(exc), 503)

    def page(name: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(
            env.get_template(name).render(lake=view.lake.root.name, page_no_max=MAX_PAGE, **context)
        )

    def pinned(table: str | None, version: int | None) -> tuple[str, int]:
        table = view.check_table(table)
        return table, view.check_version(table, version)

    def filters(
        reason: str | None,
        lang: str | None,
        source: str | None,
        column: str | None,
        low: float | None,
        high: float | None,
    ) -> Filters:
        return Filters(reason or None, lang or None, source or None, column or None, low, high)

    # ----------------------------------------------------------------- runs
    @app.get("/", response_class=HTMLResponse)
    def runs_page() -> HTMLResponse:
        runs = view.runs()
        return page(
            "runs.html",
            runs=runs,
            reports={r.run_id: view.report(r.run_id) is not None for r in runs},
            tables=view.tables(),
        )

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str) -> HTMLResponse:
        record = public_record(view.run(run_id))
        report = public_report(view.report(run_id), view.lake.root)
        return page("run.html", record=record, report=report, stats=record_stats(record))

    @app.get("/api/runs")
    def api_runs() -> list[dict[str, Any]]:
        keep = {"run_id", "job", "dataset", "status", "created_at", "started_at", "ended_at", "error"}
        return [public_record(r).model_dump(mode="json", include=keep) for r in view.runs()]

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> dict[str, Any]:
        return public_record(view.run(run_id)).model_dump(mode="json")

    @app.get("/api/runs/{run_id}/report")
    def api_report(run_id: str) -> dict[str, Any]:
        report = public_report(view.report(run_id), view.lake.root)
        if report is None:
            raise NotFound(f"run {run_id!r} has no report yet: `refinery report {run_id}` computes it")
        return report

    # --------------------------------------------------------------- tables
    @app.get("/tables", response_class=HTMLResponse)
    def tables_page() -> HTMLResponse:
        return page("tables.html", tables=api_tables())

    @app.get("/api/tables")
    def api_tables() -> list[dict[str, Any]]:
        out = []
        for t in view.tables():
            version = view.lake.version(t)
            out.append({"table": t, "version": version, "rows": view.lake.num_records(t, version)})
        return out

    @app.get("/dataset", response_class=HTMLResponse)
    def dataset_page(table: str | None = None, version: int | None = None) -> HTMLResponse:
        return page("dataset.html", **api_dataset(table, version))

    @app.get("/api/dataset")
    def api_dataset(table: str | None = None, version: int | None = None) -> dict[str, Any]:
        table, version = pinned(table, version)
        report, run_id = view.table_report(table, version)
        return {
            "table": table,
            "version": version,
            "rows": view.lake.num_records(table, version),
            "schema": view.schema(table, version),
            "versions": view.versions(table),
            "report": report,
            "report_run": run_id,
        }

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(table: str | None = None, a: int | None = None, b: int | None = None) -> HTMLResponse:
        return page("compare.html", **api_compare(table, a, b))

    @app.get("/api/compare")
    def api_compare(table: str | None = None, a: int | None = None, b: int | None = None) -> dict[str, Any]:
        table = view.check_table(table)
        latest = view.check_version(table, None)
        a = view.check_version(table, a if a is not None else max(latest - 1, 0))
        b = view.check_version(table, b if b is not None else latest)
        sides = []
        for v in (a, b):
            report, run_id = view.table_report(table, v)
            sides.append(
                {
                    "version": v,
                    "rows": view.lake.num_records(table, v),
                    "schema": view.schema(table, v),
                    "report": report,
                    "run": run_id,
                }
            )
        return {
            "table": table,
            "a": sides[0],
            "b": sides[1],
            "versions": view.versions(table),
            "diff": compare(sides[0], sides[1]),
        }

    # ------------------------------------------------------------ documents
    @app.get("/docs", response_class=HTMLResponse)
    def docs_page(q: Annotated[DocsQuery, Depends()]) -> HTMLResponse:
        return page("docs.html", **api_docs(q))

    @app.get("/api/docs")
    def api_docs(q: Annotated[DocsQuery, Depends()]) -> dict[str, Any]:
        page_no = q.page_no
        table, version = pinned(q.table or default_documents_table(view), q.version)
        flt = filters(q.reason, q.lang, q.source, q.column, q.low, q.high)
        redacted = view.redacted_sibling(table, version)
        names = [c["name"] for c in view.schema(table, version)]
        numeric = view.numeric_columns(table, version)
        panes = (
            [("dropped", False), ("kept", True)]
            if "drop_reason" in names and flt.reason in (None,)
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
            "menus": {
                c: view.distinct(table, version, c) for c in ("drop_reason", "lang", "source") if c in names
            },
            "numeric": numeric,
            "signals": [n for n in numeric if n not in ("width", "height")],
            "page": page_no,
        }

    @app.get("/doc", response_class=HTMLResponse)
    def doc_page(table: str | None = None, version: int | None = None, id: str = "") -> HTMLResponse:
        return page("doc.html", **api_doc(table, version, id))

    @app.get("/api/doc")
    def api_doc(table: str | None = None, version: int | None = None, id: str = "") -> dict[str, Any]:
        table, version = pinned(table, version)
        redacted = view.redacted_sibling(table, version)
        return {
            "table": table,
            "version": version,
            "redacted": redacted,
            "row": view.document(table, version, id, text=redacted is None),
        }

    # --------------------------------------------------------------- images
    @app.get("/images", response_class=HTMLResponse)
    def images_page(
        table: str | None = None, version: int | None = None, page_no: PageNo = 0
    ) -> HTMLResponse:
        return page("images.html", **api_images(table, version, page_no))

    @app.get("/api/images")
    def api_images(
        table: str | None = None, version: int | None = None, page_no: PageNo = 0
    ) -> dict[str, Any]:
        table = table or next((t for t in view.tables() if t.endswith("/images")), None)
        table, version = pinned(table, version)
        return {
            "table": table,
            "version": version,
            "images": view.images(table, version, page_no),
            "groups": view.image_groups(table, version),
        }

    @app.get("/thumb")
    def thumbnail(table: str | None = None, version: int | None = None, id: str = "") -> Response:
        table, version = pinned(table, version)
        return Response(view.thumbnail(table, version, id), media_type="image/png")

    # ----------------------------------------------------------- quarantine
    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine_page(
        table: str | None = None,
        version: int | None = None,
        reason: str | None = None,
        page_no: PageNo = 0,
    ) -> HTMLResponse:
        return page("quarantine.html", **api_quarantine(table, version, reason, page_no))

    @app.get("/api/quarantine")
    def api_quarantine(
        table: str | None = None,
        version: int | None = None,
        reason: str | None = None,
        page_no: PageNo = 0,
    ) -> dict[str, Any]:
        candidates = [t for t in view.tables() if t.endswith("/quarantine")]
        table, version = pinned(table or (candidates[0] if candidates else None), version)
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

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "lake": view.lake.root.name, "queries_in_flight": len(view.pool.running())}

    return app


def default_documents_table(view: LakeView) -> str | None:
    """The table a bare /docs shows: a redacted one if any, else the newest-looking documents table."""
    tables = view.tables()
    redacted = [t for t in tables if view.has_pii(t)]
    if redacted:
        return redacted[0]
    return next((t for t in tables if "text" in view.lake.arrow_schema(t).names), None)


def record_stats(record: Any) -> list[dict[str, Any]]:
    """The funnel from the run record alone, for runs whose report is not computed yet."""
    return [
        {
            **s.summary(),
            "out": {
                "docs": next(iter(s.rows_out.values()), None),
                "kept_docs": s.kept if s.kept is not None else next(iter(s.rows_out.values()), None),
            },
            "dropped": {r: {"docs": n} for r, n in s.dropped.items()},
        }
        for s in record.stages
    ]


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
            for k in sorted(set(va) | set(vb), key=lambda k: -(vb.get(k, 0) + va.get(k, 0)))
        ]
    hist_a = {h["column"]: h for h in ra["histograms"]}
    diff["histograms"] = [(hist_a[h["column"]], h) for h in rb["histograms"] if h["column"] in hist_a]
    return diff
