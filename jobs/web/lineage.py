"""One document across its dataset's tables (the /lineage page): where it is, which stage dropped it.

Each table of the dataset that has the document's id column is asked for the row in its latest
version. A table that cannot be read is marked `unreadable`, with why, and the others still answer:
one damaged table must not hide a document's history in all the rest. An augmented copy (a row the
augment stage added, with an id of its own and its parent's id in `augmented_from`) is absent from
every table before that stage; its parent is named so that the page can send the reader to the
parent's lineage instead of leaving them with a column of "absent".
"""

from __future__ import annotations

from typing import Any

from jobs.web.data import LakeView, id_column
from jobs.web.errors import Damaged, NotFound
from jobs.web.sql import quote
from pipelines.framework.drop_reason import DROP_REASON

AUGMENTED_FROM = "augmented_from"
# What a table says of the document: not there, there (no decision column), kept, dropped, or unknown.
STATES = ("absent", "present", "kept", "dropped", "unreadable")


def lineage(view: LakeView, table: str, ident: str) -> dict[str, Any]:
    """The document in each table of `table`'s dataset, oldest table first (unreadable ones last),
    and the parent it was augmented from, if any. NotFound when no readable table holds it."""
    id_col = id_column(table, view.lake.arrow_schema(table).names)
    dataset = table.rsplit("/", 1)[0]
    entries = [
        found
        for other in view.tables()
        if other.rsplit("/", 1)[0] == dataset and (found := _entry(view, other, id_col, ident)) is not None
    ]
    if not any(e["present"] for e in entries):
        unreadable = [e["table"] for e in entries if e["state"] == "unreadable"]
        held = f" (unreadable, so not searched: {', '.join(unreadable)})" if unreadable else ""
        raise NotFound(f"no row {ident!r} in any table of {dataset!r}{held}")
    parents = [e.pop("parent") for e in entries]
    return {
        "augmented_from": next((p for p in parents if p is not None), None),
        "tables": sorted(entries, key=lambda e: (e["created"] is None, e["created"] or 0, e["table"])),
    }


def _entry(view: LakeView, table: str, id_col: str, ident: str) -> dict[str, Any] | None:
    """The document in one table's latest version; None where the table has no id column (images,
    quarantine). What the table's log still tells (version, age) is kept when its data cannot be read."""
    found: dict[str, Any] = {"table": table, "version": None, "created": None, "decides": None}
    try:
        names = view.lake.arrow_schema(table).names
        if id_col not in names:
            return None
        found["version"], found["decides"] = view.lake.version(table), DROP_REASON in names
        found["created"] = view.lake.history(table)[-1].get("timestamp") or 0
        reason = quote(DROP_REASON) if found["decides"] else "NULL"
        parent = quote(AUGMENTED_FROM) if AUGMENTED_FROM in names else "NULL"
        sql = f"SELECT {reason} AS reason, {parent} AS parent FROM snap WHERE {quote(id_col)} = ? LIMIT 1"
        rows = view.query(sql, [ident], table, found["version"])
    except Damaged as exc:
        return {
            **found,
            "state": "unreadable",
            "present": None,
            DROP_REASON: None,
            "parent": None,
            "error": str(exc),
        }
    row = rows[0] if rows else {"reason": None, "parent": None}
    state = (
        "absent" if not rows else "dropped" if row["reason"] else "kept" if found["decides"] else "present"
    )
    return {
        **found,
        "state": state,
        "present": bool(rows),
        DROP_REASON: row["reason"],
        "parent": row["parent"],
    }
