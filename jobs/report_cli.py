"""`refinery report` and `refinery serve`: quality reports of runs, as a static HTML file or a local web app.

`report` computes the run's report with Spark (unless stored already) and writes
one self-contained HTML file; `serve` starts the read-only web app on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from pipelines.framework.cli_options import (
    LAKE_ENV,
    LakeOption,
    LocalMasterOption,
    fail,
    lake_root,
    output_file,
)
from pipelines.framework.storage import Location
from pipelines.framework.terminal_text import for_terminal

console = Console(stderr=True)


def report(
    run_id: str = typer.Argument(..., help="Run id, a unique prefix of one, or `latest`."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write a self-contained HTML report here."
    ),
    lake: str | None = LakeOption,
    recompute: bool = typer.Option(False, "--recompute", help="Recompute the stored report.json with Spark."),
    master: str = LocalMasterOption,
) -> None:
    """Compute a run's quality report (stored as report.json beside run.json) and optionally write HTML."""
    from jobs.registry import resolve_run_id
    from jobs.report import ReportUnreadable, load_run_report, report_path, write_run_report
    from jobs.report_summary import print_summary
    from jobs.web.render import render_static_report

    if output is not None:
        output_file(output, "HTML file (-o report.html)", "-o")
    root = lake_root(lake)
    try:
        run_id = resolve_run_id(root, run_id)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    try:
        data = None if recompute else load_run_report(root, run_id)
    except ReportUnreadable as exc:
        console.print(Text(for_terminal(f"warning: {exc}; recomputing it now")))
        data = None
    if data is None:
        from pipelines.framework.spark import get_spark

        console.print(Text(for_terminal(f"computing the report of {run_id} with Spark (one pass per table)")))
        spark = get_spark(
            master=master,
            conf={"spark.ui.showConsoleProgress": "false"},
            app_name=f"refinery:report:{run_id}",
        )
        write_run_report(spark, root, run_id)
        data = load_run_report(root, run_id)
        console.print(Text(for_terminal(f"report data: {report_path(root, run_id)}")))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_static_report(data), encoding="utf-8")
        console.print(Text(for_terminal(f"HTML report: {output}")))
    else:
        print_summary(Console(), data, str(report_path(root, run_id)))


def serve(
    lake: str | None = LakeOption,
    host: str = typer.Option(
        "127.0.0.1", help="Interface to bind; the default is reachable from this machine only."
    ),
    port: int = typer.Option(8765, help="TCP port."),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="Another Host name to answer (repeatable); by default only 127.0.0.1, localhost and [::1] "
        "with the port are, so that a DNS-rebinding page cannot read the lake.",
    ),
) -> None:
    """Serve the read-only web app: runs, reports, datasets, documents, images, quarantine."""
    import uvicorn

    from jobs.web.app import create_app

    root = Location.parse(lake_root(lake))
    try:
        root.require_reachable()
        found = root.is_dir()
    except OSError as exc:
        fail(str(exc))
    if not found:
        fail(f"no lake folder at {root}; pass --lake or set {LAKE_ENV}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] binding {host}: anyone who can reach it can read the lake's documents"
        )
    console.print(Text(for_terminal(f"serving {root} on http://{host}:{port}/")))
    app = create_app(root, port=port, allowed_hosts=allow_host)
    uvicorn.run(app, host=host, port=port, log_level="warning")
