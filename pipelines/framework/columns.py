"""Checking the columns a stage's config names against its input table, before any work starts.

A column a spec names that the table lacks would otherwise surface late and far from its cause:
as Spark's `UNRESOLVED_COLUMN` with a plan dump, or as a KeyError inside a Python task after the
stages before it ran. Every stage words it the same way, naming the field to fix.
"""

from __future__ import annotations

from collections.abc import Iterable


def require_columns(
    table: str, available: Iterable[str], wanted: Iterable[tuple[str, str]], *, ignore_case: bool = False
) -> None:
    """Raise ValueError for the first `(field, column)` of `wanted` whose column `table` lacks.

    `ignore_case` for columns only Spark's analyzer resolves (SQL expressions: case-insensitive by
    default); a column an Arrow kernel or pyarrow reads by name must match exactly.
    """
    names = list(available)
    present = {n.lower() for n in names} if ignore_case else set(names)
    for field, column in wanted:
        if (column.lower() if ignore_case else column) not in present:
            raise ValueError(f"{field}: table {table!r} has no {column!r} column (columns: {names})")
