"""What every route of the web app shares: the lake view, page rendering and request checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from jobs.web.data import LakeView

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
