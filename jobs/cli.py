"""The `refinery` command line: run jobs, inspect runs, tables and quarantine.

Area commands (dedup, quality, pii, shards, ...) live in their own packages as
typer sub-apps and are mounted here, so this file stays an index of verbs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from jobs.mount import mount_subapps

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

LakeOption = typer.Option(None, "--lake", help="Lake root folder (default: $REFINERY_LAKE or ./lake).")


def lake_root(lake: Path | None) -> Path:
    return Path(lake or os.environ.get("REFINERY_LAKE", "lake"))


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code)


@app.command()
def run(
    spec: Path = typer.Argument(..., help="Job spec YAML file."),
    run_id: str | None = typer.Option(None, help="Run id (default: generated)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run a job spec locally (Spark local[*] unless the spec names a master)."""
    from pipelines.runner import run_spec
    from pipelines.spec import SpecError

    try:
        record = run_spec(spec, run_id=run_id, progress=not quiet)
    except SpecError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the run record holds the traceback; users get the cause
        fail(
            f"{type(exc).__name__}: {exc}\n(see the run record under the lake's _runs folder: `refinery runs`)",
            1,
        )
    _print_run(record)
    console.print(f"run record: {record.path}")
    console.print(f"tables under: {Path(record.lake) / record.dataset}")


def _print_run(record) -> None:
    table = Table(title=f"run {record.run_id} [{record.status}]")
    for col in ("stage", "status", "seconds", "rows in", "rows out", "kept", "dropped", "quarantined"):
        table.add_column(col)
    for s in record.stages:
        table.add_row(
            f"{s.id} ({s.stage})" if s.id != s.stage else s.id,
            s.status,
            f"{s.seconds:.1f}" if s.seconds is not None else "",
            "" if s.rows_in is None else str(s.rows_in),
            ", ".join(f"{k}={v}" for k, v in s.rows_out.items()),
            "" if s.kept is None else str(s.kept),
            ", ".join(f"{k}={v}" for k, v in s.dropped.items()),
            "" if s.quarantined is None else str(s.quarantined),
        )
    console.print(table)
    if record.error:
        err.print(f"[red]{record.error}[/red]")


@app.command()
def runs(lake: Path | None = LakeOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """List runs recorded in the lake, newest first."""
    from pipelines.runrecord import list_runs

    records = list_runs(lake_root(lake))
    if as_json:
        print(
            json.dumps(
                [
                    r.model_dump(
                        mode="json",
                        include={"run_id", "job", "status", "created_at", "ended_at", "master", "app_id"},
                    )
                    for r in records
                ],
                indent=2,
            )
        )
        return
    table = Table(title=f"runs in {lake_root(lake)}")
    for col in ("run", "job", "status", "master", "created", "ended"):
        table.add_column(col)
    for r in records:
        table.add_row(r.run_id, r.job, r.status, r.master, r.created_at, r.ended_at or "")
    console.print(table)


@app.command()
def show(run_id: str, lake: Path | None = LakeOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: status, per-stage timings, rows and table versions."""
    from pipelines.runrecord import RunRecord

    try:
        record = RunRecord.load(lake_root(lake), run_id)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print(record.model_dump_json(indent=2))
        return
    _print_run(record)
    for s in record.stages:
        console.print(f"{s.id}: inputs {s.inputs} -> outputs {s.outputs}")


@tables_app.callback()
def tables(ctx: typer.Context, lake: Path | None = LakeOption) -> None:
    """List every table with its latest version and row count."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.lake import Lake

    lk = Lake(lake_root(lake))
    listing = Table(title=f"tables in {lk.root}")
    for col in ("table", "version", "rows"):
        listing.add_column(col)
    for t in lk.tables():
        listing.add_row(t, str(lk.version(t)), str(lk.num_records(t)))
    console.print(listing)


@tables_app.command("show")
def table_show(
    name: str = typer.Argument(..., help="Table (dataset/table)."), lake: Path | None = LakeOption
) -> None:
    """One table's versions (with the stage and run that wrote each), row counts and schema."""
    from pipelines.lake import Lake, TableMissingError

    lk = Lake(lake_root(lake))
    try:
        history = lk.history(name)
        schema = lk.arrow_schema(name)
    except (TableMissingError, ValueError) as exc:
        fail(str(exc))
    versions = Table(title=f"{name}: versions")
    for col in ("version", "time", "rows", "stage", "run"):
        versions.add_column(col)
    for c in history:
        v = int(c["version"])
        versions.add_row(
            str(v),
            _when(c.get("timestamp")),
            str(lk.num_records(name, v)),
            c["meta"].get("stage", ""),
            c["meta"].get("run_id", ""),
        )
    console.print(versions)
    console.print("schema:")
    for field in schema:
        console.print(f"  {field.name}: {field.type}")


def _when(millis: int | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds") if millis else ""


@app.command()
def quarantine(
    name: str | None = typer.Argument(None, help="Quarantine table (default: every */quarantine table)."),
    lake: Path | None = LakeOption,
    limit: int = typer.Option(20, help="Rows to show per table."),
) -> None:
    """Show quarantined records: counts per reason and the first rows (excerpts truncated)."""
    import pyarrow.compute as pc

    from pipelines.lake import Lake

    lk = Lake(lake_root(lake))
    names = [name] if name else [t for t in lk.tables() if t.endswith("quarantine")]
    if not names:
        console.print("no quarantine tables")
        return
    for tname in names:
        data = lk.dataset(tname)
        reasons = data.to_table(columns=["reason"]).column("reason")
        counts = pc.value_counts(reasons).to_pylist()
        console.print(
            f"[bold]{tname}[/bold]: {len(reasons)} rows; by reason: "
            + ", ".join(f"{c['values']}={c['counts']}" for c in counts)
        )
        rows = data.head(limit, columns=["source", "locator", "reason", "excerpt"]).to_pylist()
        table = Table()
        for col in ("source", "locator", "reason", "excerpt"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(*(str(r[c] or "")[:120] for c in ("source", "locator", "reason", "excerpt")))
        console.print(table)


mount_subapps(app)
mount_subapps(tables_app, [("purge-raw", "pii.cli:purge_raw_command")])


def main() -> None:
    app(prog_name="refinery", args=sys.argv[1:])


if __name__ == "__main__":
    main()
