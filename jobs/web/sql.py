"""SQL pieces built from request values: quoted column names and the document filters' WHERE clause.

Values from a request only ever travel as query parameters; column names are either the lake's own
(checked against the schema by the caller) or quoted here, so no request text becomes SQL syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.framework.drop_reason import DROP_REASON

# The `reason` filter value that asks for kept rows only (a reason is never this string).
KEPT = "__kept__"


def quote(name: str) -> str:
    """`name` as a DuckDB identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def text_prefix(names: list[str], column: str, chars: int, alias: str) -> list[str]:
    """A text column's length (as `<column>_chars`) and its first `chars` characters as `alias`
    (none when `chars` is 0, i.e. the text is withheld): a page never carries a whole long text."""
    if column not in names:
        return []
    shown = [f"substr({quote(column)}, 1, {int(chars)}) AS {quote(alias)}"] if chars else []
    return [f"length({quote(column)}) AS {quote(column + '_chars')}", *shown]


@dataclass(frozen=True)
class Filters:
    """Document filters from the query string; `reason` may be KEPT (kept rows only)."""

    reason: str | None = None
    lang: str | None = None
    source: str | None = None
    column: str | None = None
    low: float | None = None
    high: float | None = None


def where_clause(names: list[str], filters: Filters, kept: bool | None) -> tuple[str, list[Any]]:
    """` WHERE ...` (or "") and its parameters: `kept` picks kept (True) or dropped (False) rows,
    and each filter applies only where the table has its column."""
    clauses, params = _reason_clauses(names, filters, kept)
    for column, value in (("lang", filters.lang), ("source", filters.source)):
        if value and column in names:
            clauses.append(f"{column} = ?")
            params.append(value)
    if filters.column:
        for op, value in ((">=", filters.low), ("<=", filters.high)):
            if value is not None:
                clauses.append(f"{quote(filters.column)} {op} ?")
                params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _reason_clauses(names: list[str], filters: Filters, kept: bool | None) -> tuple[list[str], list[Any]]:
    """Kept, dropped or one drop reason; nothing on a table without the drop reason column."""
    if DROP_REASON not in names:
        return [], []
    column = quote(DROP_REASON)
    clauses: list[str] = []
    params: list[Any] = []
    if kept is True or filters.reason == KEPT:
        clauses.append(f"{column} IS NULL")
    elif kept is False:
        clauses.append(f"{column} IS NOT NULL")
    if filters.reason and filters.reason != KEPT:
        clauses.append(f"{column} = ?")
        params.append(filters.reason)
    return clauses, params
