"""`refinery quarantine` and `refinery dropped`: browse what ingest set aside and what later stages dropped.

Both read a lake table's rows and print them escaped for the terminal; a table whose data files
are missing or not Parquet is one line naming it (`damaged_table`), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from pipelines.framework.cli_options import JsonOption, LakeOption, fail, print_json, reachable
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.terminal_table import print_table
from pipelines.framework.terminal_text import for_terminal

console = Console()


EXCERPT_CHARS = 120


def excerpt(text: str | None, chars: int = EXCERPT_CHARS) -> str:
    """The start of a text, escaped, saying how much was left out (rather than an ambiguous `…`)."""
    text = text or ""
    if len(text) <= chars:
        return for_terminal(text)
    return f"{for_terminal(text[:chars])} [+{len(text) - chars} chars]"


@contextmanager
def damaged_table(name: str) -> Iterator[None]:
    """A data file the log names but storage lacks, or one that is not Parquet: one line naming the
    table, not a traceback."""
    import pyarrow as pa

    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        fail(f"table {name}: its data cannot be read ({str(exc).splitlines()[0]}); the table is damaged", 1)


def quarantine(
    name: str | None = typer.Argument(None, help="Quarantine table (default: every */quarantine table)."),
    lake: str | None = LakeOption,
    limit: int = typer.Option(20, min=1, help="Rows to show per table."),
    as_json: bool = JsonOption,
) -> None:
    """Show quarantined records: counts per reason and the first rows (excerpts shortened)."""
    import pyarrow.compute as pc

    from pipelines.framework.lake import Lake, TableMissingError

    lk = Lake(reachable(lake))
    names = [name] if name else [t for t in lk.tables() if t.endswith("quarantine")]
    listing = []
    for tname in names:
        try:
            data = lk.dataset(tname)
        except (TableMissingError, ValueError) as exc:
            fail(str(exc))
        if missing := {"source", "locator", "reason", "excerpt"} - set(data.schema.names):
            fail(f"table {tname} is not a quarantine table (no {', '.join(sorted(missing))})")
        with damaged_table(tname):
            reasons = data.to_table(columns=["reason"]).column("reason")
            counts = {c["values"]: c["counts"] for c in pc.value_counts(reasons).to_pylist()}
            rows = data.head(limit, columns=["source", "locator", "reason", "excerpt"]).to_pylist()
        listing.append({"table": tname, "rows": len(reasons), "by_reason": counts, "first": rows})
    if as_json:
        print_json(listing)
        return
    if not listing:
        console.print("no quarantine tables")
    for entry in listing:
        if not entry["rows"]:
            console.print(Text(for_terminal(f"{entry['table']}: nothing quarantined")))
            continue
        by_reason = ", ".join(f"{reason} {count}" for reason, count in entry["by_reason"].items())
        console.print(Text(for_terminal(f"{entry['table']}: {entry['rows']} rows; by reason: {by_reason}")))
        print_table(
            console,
            ("source", "locator", "reason", "excerpt"),
            [(r["source"], r["locator"], r["reason"], excerpt(r["excerpt"])) for r in entry["first"]],
        )


def dropped(
    name: str = typer.Argument(..., help=f"Table with a {DROP_REASON} column, e.g. demo/decided."),
    reason: str | None = typer.Option(None, "--reason", help="Only this drop reason."),
    version: int | None = typer.Option(None, "--version", min=0, help="Table version (default: latest)."),
    limit: int = typer.Option(10, min=1, help="Documents to show."),
    lake: str | None = LakeOption,
    as_json: bool = JsonOption,
) -> None:
    """Browse dropped documents: id, source, why, and the start of the text."""
    import pyarrow.dataset as ds

    from pipelines.framework.lake import Lake, TableMissingError

    lk = Lake(reachable(lake))
    try:
        data = lk.dataset(name, version)
    except (TableMissingError, ValueError) as exc:
        fail(str(exc))
    if DROP_REASON not in data.schema.names:
        fail(f"table {name} has no {DROP_REASON} column; pick a table written by decide or a later stage")
    wanted = ds.field(DROP_REASON).is_valid()
    if reason is not None:
        wanted = ds.field(DROP_REASON) == reason
    columns = [c for c in ("doc_id", "source", DROP_REASON, "text") if c in data.schema.names]
    with damaged_table(name):
        rows = data.head(limit, columns=columns, filter=wanted).to_pylist()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(Text(for_terminal(_nothing_dropped(data, name, reason))))
    for row in rows:
        console.print(
            Text(
                for_terminal(f"{row.get('doc_id')}  [{row[DROP_REASON]}]  {row.get('source', '')}"),
                style="bold",
            )
        )
        console.print(Text("  " + excerpt(row.get("text"), 3 * EXCERPT_CHARS)))


def _nothing_dropped(data: Any, name: str, reason: str | None) -> str:
    """Why nothing was shown, with the reasons the table does hold (a mistyped reason matches nothing)."""
    import difflib

    import pyarrow.compute as pc

    if reason is None:
        return f"no dropped documents in {name}"
    with damaged_table(name):
        counts = pc.value_counts(
            data.to_table(columns=[DROP_REASON]).column(DROP_REASON).drop_null()
        ).to_pylist()
    held = {c["values"]: c["counts"] for c in counts}
    if not held:
        return f"no dropped documents in {name}"
    close = difflib.get_close_matches(reason, list(held), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(f"{r} {n}" for r, n in sorted(held.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"no document of {name} was dropped for {reason!r}; {hint}its reasons: {listed}"
