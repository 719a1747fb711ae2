"""Runs: the list, one run's page and record (without secrets or host details), and its report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from jobs.reasons import reason_descriptions
from jobs.web.errors import Damaged, NotFound
from jobs.web.public_record import public_record, public_report, scrub
from jobs.web.site import Site


def runs_router(site: Site) -> APIRouter:
    router = APIRouter()
    view = site.view

    @router.get("/", response_class=HTMLResponse)
    def runs_page() -> HTMLResponse:
        runs = view.runs()
        return site.page(
            "runs.html",
            runs=runs,
            reports={r.run_id: _report_state(view, r.run_id) for r in runs},
            tables=view.tables(),
        )

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str) -> HTMLResponse:
        record = public_record(view.run(run_id))
        try:
            report, damaged = public_report(view.report(run_id), view.lake.root), None
        except Damaged as exc:
            report, damaged = None, scrub(str(exc), str(view.lake.root), secrets=False)
        reasons = {**reason_descriptions(record), **(report or {}).get("reasons", {})}
        return site.page(
            "run.html",
            record=record,
            report=report,
            damaged=damaged,
            stats=record_stats(record),
            reasons=reasons,
        )

    @router.get("/api/runs")
    def api_runs() -> list[dict[str, Any]]:
        keep = {"run_id", "job", "dataset", "status", "created_at", "started_at", "ended_at", "error"}
        return [public_record(r).model_dump(mode="json", include=keep) for r in view.runs()]

    @router.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> dict[str, Any]:
        return public_record(view.run(run_id)).model_dump(mode="json")

    @router.get("/api/runs/{run_id}/report")
    def api_report(run_id: str) -> dict[str, Any]:
        report = public_report(view.report(run_id), view.lake.root)
        if report is None:
            raise NotFound(f"run {run_id!r} has no report yet: `refinery report {run_id}` computes it")
        return report

    return router


def _report_state(view: Any, run_id: str) -> str:
    """What the runs list says of a run's report: computed, not computed, or damaged (its page says why)."""
    try:
        return "yes" if view.report(run_id) is not None else "not computed"
    except Damaged:
        return "damaged"


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
