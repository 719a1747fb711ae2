"""`refinery report` in the terminal: what the stored report says, in a few lines.

Without `-o` the command used to print nothing when the report was already stored, which reads as
"nothing happened". The summary is what a curator checks first: per language, how much was kept
and why the rest was dropped; and what the shard sets hold. The rest is in the HTML and the web app.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from pipelines.framework.terminal_table import print_table
from pipelines.framework.terminal_text import for_terminal

TOP_REASONS = 3


def _reasons(entry: dict[str, Any]) -> list[str]:
    """One line per reason (a narrow column fits 80 terminal columns), the rest counted."""
    shown = [f"{r['reason']} {r['docs']:,}" for r in entry["reasons"][:TOP_REASONS]]
    hidden = sum(r["docs"] for r in entry["reasons"][TOP_REASONS:]) + (entry.get("other_reasons") or 0)
    return shown + ([f"other reasons {hidden:,}"] if hidden else [])


def language_rows(section: dict[str, Any]) -> list[list[object]]:
    """One row per language (the model's label, `none` where no language was assigned), then the total."""
    rows: list[list[object]] = [
        [
            entry["lang"] or "none",
            f"{entry['docs']:,}",
            f"{entry['kept']:,}",
            f"{entry['dropped']:,}",
            _reasons(entry),
        ]
        for entry in section["languages"]
    ]
    total = section["total"]
    rows.append(["all", f"{total['docs']:,}", f"{total['kept']:,}", f"{total['dropped']:,}", None])
    return rows


def shard_line(shards: dict[str, Any]) -> str:
    splits = ", ".join(f"{name} {split['tokens']:,}" for name, split in sorted(shards["splits"].items()))
    return (
        f"shards {shards['path']}: {shards['total_tokens']:,} tokens of {shards['total_documents']:,} "
        f"documents ({splits}) from {shards['source_table']}@{shards['source_version']}"
    )


def print_summary(console: Console, data: dict[str, Any], where: str) -> None:
    """The run's status, languages kept and dropped, its shard sets, and where the whole report is."""
    console.print(Text(for_terminal(f"report of run {data['run_id']} ({data['status']}): {where}")))
    section = data.get("languages")
    if section:
        print_table(
            console,
            ["lang", "docs", "kept", "dropped", "dropped for"],
            language_rows(section),
            title=f"languages in {section['table']}",
            right=("docs", "kept", "dropped"),
        )
    for shards in data.get("shards") or []:
        console.print(Text(for_terminal(shard_line(shards))))
    console.print(
        Text("-o report.html writes it as one HTML file; `refinery serve` browses it with every table")
    )
