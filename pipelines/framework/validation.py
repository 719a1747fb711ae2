"""Pydantic errors as messages a user can act on: each names the field to fix and what is wrong.

Pydantic's own text spreads one problem over three lines with a documentation URL
and the whole input echoed back; a config or calibration file's reader wants
`stages[2].text_column: Field required` instead, on one line per problem.
"""

from __future__ import annotations

from pydantic import ValidationError


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """`stages[2].options.lang` from pydantic's ('stages', 2, 'options', 'lang')."""
    return (prefix + ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)).replace(".[", "[")


def field_problems(exc: ValidationError, root: str = "<root>", separator: str = "; ") -> str:
    """Every error of `exc` as `field: message`; `root` names an error of the whole object."""
    return separator.join(f"{field_path(err['loc']) or root}: {err['msg']}" for err in exc.errors())
