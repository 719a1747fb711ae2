"""What every route of the web app shares: the lake view, page rendering and request checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from jobs.web.data import LakeView
from jobs.web.errors import BadRequest, Damaged, NotFound

# The last page anyone may ask for: OFFSET is at most MAX_PAGE * page size rows (a filter narrows further).
MAX_PAGE = 500
PageNo = Annotated[
    int,
    Query(alias="page", ge=0, le=MAX_PAGE, description=f"0 to {MAX_PAGE}; narrow the filters to see more"),
]


@dataclass(frozen=True)
class Site:
    """The lake view and the template environment, with the two things every route does with them."""

    view: LakeView
    env: Environment

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A rendered template; pages name the lake folder, never its absolute path."""
        html = self.env.get_template(name).render(
            lake=self.view.lake.root.name, page_no_max=MAX_PAGE, **context
        )
        return HTMLResponse(html, status)

    def pinned(self, table: str | None, version: int | None) -> tuple[str, int]:
        """(table, version) checked against the lake's listing; the latest version when none is asked."""
        table = self.view.check_table(table)
        return table, self.view.check_version(table, version)


def required(name: str, value: str | None, what: str) -> str:
    """A parameter a route cannot do without: missing or empty is a 400 naming it, as `table` is."""
    if not value:
        raise BadRequest(f"{name}: required; {what}")
    return value


def first_readable(tables: list[str], show: Callable[[str], dict[str, Any]], none: str) -> dict[str, Any]:
    """`show` of the first of `tables` that can be read, for a page asked without a table: the damaged
    ones before it are passed over and named (`passed_over`), so that one damaged table does not hide
    the others behind its error. Damaged when all are; NotFound (`none`) when there are none."""
    passed_over: list[str] = []
    for table in tables:
        try:
            return {**show(table), "passed_over": passed_over}
        except Damaged as exc:
            passed_over.append(str(exc))
    if passed_over:
        raise Damaged(" ".join(passed_over))
    raise NotFound(none)
