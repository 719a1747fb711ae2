"""The `refinery` command line: run jobs; inspect runs, tables, quarantine and dropped documents; doctor.

Every table goes through `pipelines.framework.terminal_table` (whole at any width, escaped), every
run id through `jobs.registry.resolve_run_id` (`latest`, unique prefixes). Area commands (dedup, quality, pii, shards, ...) live in their own packages as
typer sub-apps and are mounted here, so this file stays an index of verbs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from jobs.browse_cli import dropped, quarantine
from jobs.mount import mount_subapps
from pipelines.framework.cli_options import (
    LAKE_ENV,
    JsonOption,
    LakeOption,
    RunIdOption,
    fail,
    lake_root,
    print_json,
    reachable,
)
from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import StorageError, scrub
from pipelines.framework.storage_urls import UrlError
from pipelines.framework.terminal_table import print_table
from pipelines.framework.terminal_text import for_terminal, path_for_display

if TYPE_CHECKING:
    from pipelines.framework.lake import Lake

app = typer.Typer(
    help="refinery: corpus curation on Spark + Delta, tokenized shards, streaming training.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class TablesGroup(TyperGroup):
    """`refinery tables NAME` is short for `refinery tables show NAME`; other words are subcommands."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


tables_app = typer.Typer(
    cls=TablesGroup,
    help="Delta tables in the lake: `tables` lists, `tables NAME` shows one.",
    invoke_without_command=True,
)
app.add_typer(tables_app, name="tables")
console = Console()
err = Console(stderr=True)

RunRef = typer.Argument(..., help="Run id, a unique prefix of one, or `latest` (`refinery runs` lists them).")


@app.command()
def run(
    spec: Path = typer.Argument(..., help="Job spec YAML file."),
    run_id: str | None = RunIdOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run a job spec locally (Spark local[*] unless the spec names a master)."""
    from pipelines.framework.runner import prepare_run
    from pipelines.framework.spec import SpecError

    try:
        runner = prepare_run(spec, run_id=run_id, progress=not quiet)
    except SpecError as exc:
        fail(str(exc))
    except StorageError as exc:  # the lake cannot be reached or made: exit 1, as any storage failure
        fail(str(exc), 2 if isinstance(exc, UrlError) else 1)  # ... but a URL wrong as written is the spec's
    try:
        record = runner.run()
    except Exception as exc:  # noqa: BLE001 - the run record holds the traceback; users get the cause
        fail(
            f"{type(exc).__name__}: {exc}\n(see the run record under the lake's _runs folder: `refinery runs`)",
            1,
        )
    _print_funnel(record)
    console.print(Text(f"run record: {path_for_display(record.path)}"))
    console.print(Text(f"tables under: {path_for_display(Location.parse(record.lake) / record.dataset)}"))


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _print_funnel(record) -> None:
    """Stage, seconds, rows in, kept and dropped by this stage, with one line per drop reason below."""
    from jobs.funnel import funnel

    rows: list[tuple[object, ...]] = []
    steps = funnel(record)
    for step in steps:
        name = step.id if step.id == step.stage else f"{step.id} ({step.stage})"
        seconds = "" if step.seconds is None else f"{step.seconds:.1f}"
        rows.append((name, step.status, seconds, step.rows_in, step.kept, step.dropped_total))
        rows += [(f"  {reason}", "", "", None, None, count) for reason, count in (step.dropped or {}).items()]
        if step.quarantined:
            rows.append(("  (quarantined)", "", "", None, None, step.quarantined))
        if not step.upstream_known:
            rows.append(("  (counts include rows dropped before this run)", "", "", None, None, None))
    print_table(
        console,
        ("stage", "status", "seconds", "in", "kept", "dropped"),
        rows,
        title=f"run {record.run_id} [{record.status}]",
        right=("seconds", "in", "kept", "dropped"),
    )
    for step in steps:
        for note in step.notes:
            console.print(Text(for_terminal(f"{step.id}: {note}")), soft_wrap=True)
    if record.error:
        err.print(Text(for_terminal(record.error, keep_newlines=True), style="red"))


def _print_stage_details(record) -> None:
    """Per stage: rows out per table, table versions read and written, reconciliation, error."""
    console.print(Text("details", style="bold"))
    for s in record.stages:
        console.print(Text(for_terminal(f"{s.id} ({s.stage}) {s.status}"), style="bold"))
        lines = {
            "reads": ", ".join(f"{t} v{v}" for t, v in s.inputs.items()),
            "writes": ", ".join(f"{t} v{v}" for t, v in s.outputs.items()),
            "rows out": ", ".join(f"{t} {n}" for t, n in s.rows_out.items()),
            "reconciled": "" if s.reconciled is None else ("yes" if s.reconciled else "NO"),
            "started": s.started_at or "",
            "error": s.error or "",
        }
        for key, value in lines.items():
            if value:
                console.print(Text(f"  {key}: {for_terminal(value)}"))


@app.command()
def runs(lake: str | None = LakeOption, as_json: bool = JsonOption) -> None:
    """List runs recorded in the lake, newest first."""
    from pipelines.framework.runrecord import read_runs

    records, unreadable = read_runs(reachable(lake))
    if unreadable:
        err.print(
            Text(for_terminal(f"{len(unreadable)} run record(s) could not be read, first: {unreadable[0]}")),
            style="yellow",
        )
    if as_json:
        print_json(
            [
                r.model_dump(
                    mode="json",
                    include={"run_id", "job", "status", "created_at", "ended_at", "master", "app_id"},
                )
                for r in records
            ]
        )
        return
    if not records:
        root = lake_root(lake)
        where = "no lake there" if root.is_local and not root.exists() else "no run recorded there yet"
        console.print(
            Text(
                for_terminal(
                    f"no runs in {path_for_display(root)} ({where}); `refinery run SPEC` records one, "
                    f"--lake or {LAKE_ENV} names another lake"
                )
            )
        )
        return
    print_table(
        console,
        ("run", "status", "created (UTC)"),
        [(r.run_id, r.status, _short_time(r.created_at)) for r in records],
        title=f"runs in {path_for_display(lake_root(lake))}",
    )


@app.command()
def show(run_id: str = RunRef, lake: str | None = LakeOption, as_json: bool = JsonOption) -> None:
    """One run: the funnel (what each stage kept and dropped), then each stage's tables and versions."""
    from dataclasses import asdict

    from jobs.funnel import funnel
    from jobs.registry import load_run

    try:
        record = load_run(reachable(lake), run_id)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print_json({**record.model_dump(mode="json"), "funnel": [asdict(step) for step in funnel(record)]})
        return
    _print_funnel(record)
    _print_stage_details(record)


@tables_app.callback()
def tables(ctx: typer.Context, lake: str | None = LakeOption, as_json: bool = JsonOption) -> None:
    """List every table with its latest version and row count."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.framework.lake import Lake

    lk = Lake(reachable(lake))
    listing = [_table_row(lk, t) for t in lk.tables()]
    if as_json:
        print_json(listing)
        return
    print_table(
        console,
        ("table", "version", "rows"),
        [
            (t["table"], t["version"], t["rows"] if "error" not in t else f"unreadable: {t['error']}")
            for t in listing
        ],
        title=f"tables in {path_for_display(lk.root)}",
        right=("version", "rows"),
    )


def _table_row(lk: Lake, table: str) -> dict:
    """One table of the listing; a damaged one is a row saying why, not the end of the listing."""
    from deltalake.exceptions import DeltaError

    from pipelines.framework.lake import without_backtrace

    try:
        return {"table": table, "version": lk.version(table), "rows": lk.num_records(table)}
    except (LookupError, DeltaError, OSError, ValueError) as exc:
        return {"table": table, "version": None, "rows": None, "error": without_backtrace(exc)}


@tables_app.command("show")
def table_show(
    name: str = typer.Argument(..., help="Table (dataset/table)."),
    lake: str | None = LakeOption,
    as_json: bool = JsonOption,
) -> None:
    """One table's versions (with the stage and run that wrote each), row counts and schema."""
    from pipelines.framework.lake import Lake, TableMissingError

    lk = Lake(reachable(lake))
    try:
        history = lk.history(name)
        schema = lk.arrow_schema(name)
    except (TableMissingError, ValueError) as exc:
        fail(str(exc))
    versions = [
        {
            "version": int(c["version"]),
            "time": _when(c.get("timestamp")),
            "rows": lk.num_records(name, int(c["version"])),
            "stage": c["meta"].get("stage", ""),
            "run": c["meta"].get("run_id", ""),
        }
        for c in history
    ]
    columns = [{"name": f.name, "type": str(f.type)} for f in schema]
    if as_json:
        print_json({"table": name, "versions": versions, "schema": columns})
        return
    print_table(
        console,
        ("version", "time", "rows", "stage", "run"),
        [tuple(v.values()) for v in versions],
        title=f"{name}: versions",
        right=("version", "rows"),
    )
    console.print("schema:")
    for column in columns:
        console.print(Text(f"  {for_terminal(column['name'])}: {column['type']}"))


def _short_time(iso: str | None) -> str:
    """`2026-12-03T07:57:48.580+00:00` as `2026-12-03 07:57:48`: a listing needs no more."""
    return "" if not iso else iso[:19].replace("T", " ")


def _when(millis: int | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds") if millis else ""


@app.command()
def doctor(
    lake: str | None = LakeOption,
    as_json: bool = JsonOption,
    tokenizer: Path | None = typer.Option(
        None,
        help="tokenizer.json to check (default: the one each shards stage of --spec uses, else the bundled one).",
    ),
    spark_check: bool = typer.Option(True, "--spark/--no-spark", help="Start Spark locally (about 10 s)."),
    spec: Path | None = typer.Option(None, "--spec", help="Job spec: also check the segmenters it uses."),
) -> None:
    """Check what a run needs (Java, Spark, the offline models, the lake, disk, a GPU) and say what to do.

    Exits 1 when a required check fails.
    """
    from jobs.doctor import print_checks, run_checks

    checks = run_checks(lake_root(lake), tokenizer, spark=spark_check, spec=spec)
    if as_json:
        print_json([check.as_dict() for check in checks])
    else:
        print_checks(console, checks)
    if any(check.failed_required for check in checks):
        raise typer.Exit(1)


mount_subapps(app)
mount_subapps(tables_app, [("purge-raw", "pii.cli:purge_raw_command")])


app.command()(quarantine)
app.command()(dropped)


def main() -> None:
    """The `refinery` console script (pyproject's [project.scripts]) and `python -m jobs.cli`.

    Both must come here, not to `app`: a storage failure raised mid-command (a lake that stopped
    answering, refused credentials) is one line naming the URL and what to check, and exit 1.
    """
    try:
        app(prog_name="refinery", args=sys.argv[1:])
    except StorageError as exc:  # scrubbed again: the message may quote a storage client's request
        text = for_terminal(scrub(str(exc)), keep_newlines=True)
        err.print(Text("error: ", style="bold red") + Text(text))
        sys.exit(2 if isinstance(exc, UrlError) else 1)


if __name__ == "__main__":
    main()
