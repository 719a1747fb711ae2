"""Tables for any terminal: complete at 80 columns and when piped, never an ellipsis.

A rich table squeezed below its natural width cuts cells to `succee…`, and what it cuts is
what the user has to type next (a run id, a table name, a drop reason). So a table is printed
as a table only when every cell fits whole; otherwise each row is stacked as `column: value`
lines, which read at any width. Every cell is untrusted text: it goes through `for_terminal`
and is printed as plain `Text`, so neither control codes nor rich markup in the data act.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pipelines.framework.terminal_text import for_terminal

UNBOUNDED = 1_000_000  # measure a table's natural width without the console's limit
Cell = object  # str()-able, None (empty), or a list/tuple of lines shown one per line


def cell_text(value: Cell) -> Text:
    """A cell as plain text; a list becomes one line per item, each escaped on its own."""
    if value is None:
        return Text("")
    if isinstance(value, list | tuple):
        return Text("\n".join(for_terminal(str(item)) for item in value))
    return Text(for_terminal(str(value)))


def print_table(
    console: Console,
    columns: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    title: str | None = None,
    right: Sequence[str] = (),
) -> None:
    """Print rows as a table when it fits the console whole, else stacked one row per block.

    `right` names the numeric columns (right-aligned in table form).
    """
    texts = [[cell_text(value) for value in row] for row in rows]
    table = Table(title=None if title is None else Text(for_terminal(title)), title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True, justify="right" if column in right else "left")
    for row in texts:
        table.add_row(*row)
    if Measurement.get(console, console.options.update_width(UNBOUNDED), table).maximum <= console.width:
        console.print(table)
        return
    _print_stacked(console, columns, texts, title)


def _print_stacked(
    console: Console, columns: Sequence[str], rows: list[list[Text]], title: str | None
) -> None:
    """Each row as `first-column value` then indented `column: value` lines (multi-line values below)."""
    if title is not None:
        console.print(Text(for_terminal(title), style="italic"))
    for row in rows:
        head = Text(f"{columns[0]}: ", style="bold")
        head.append_text(row[0])
        console.print(head)
        for column, value in zip(columns[1:], row[1:], strict=True):
            if not value.plain:
                continue
            line = Text(f"  {column}:", style="bold")
            if "\n" in value.plain:
                line.append("\n")
                line.append_text(Text("\n").join(Text(f"    {part}") for part in value.plain.split("\n")))
            else:
                line.append(" ")
                line.append_text(value)
            console.print(line)
