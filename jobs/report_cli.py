"""`refinery report` and `refinery serve`: quality reports of runs, as a static HTML file or a local web app.

`report` computes the run's report with Spark (unless stored already) and writes
one self-contained HTML file; `serve` starts the read-only web app on 127.0.0.1.
"""

from __future__ import annotations

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
from pipelines.framework.storage_settings import StorageError
from pipelines.framework.storage_urls import HTTP_SCHEMES, lake_url_problem
from pipelines.framework.terminal_text import for_terminal

console = Console(stderr=True)


def report(
    run_id: str = typer.Argument(..., help="Run id, a unique prefix of one, or `latest`."),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Write a self-contained HTML report here: a path or a URL such as s3://bucket/reports/r.html.",
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

    target = None if output is None else _html_target(output)
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
    for key, why in (data.get("unreadable") or {}).items():
        why = f"{why} (then `refinery report {run_id} --recompute`)"
        console.print(Text(for_terminal(f"warning: {key} is left out of the report: {why}"), style="yellow"))
    if target is not None:
        target.write_text(render_static_report(data))
        console.print(Text(for_terminal(f"HTML report: {target}")))
    else:
        print_summary(Console(), data, str(report_path(root, run_id)))


def _html_target(output: str) -> Location:
    """Where `-o` writes, checked before Spark starts: a local file (see `output_file`), or an object
    written through the I/O layer with the lake's storage settings. Read as a `Path`, a URL used to
    become a local folder `s3:` with exit 0; now a bucket that is not there is said at once (exit 1)."""
    try:
        target = Location.parse(output)
    except StorageError as exc:  # a URL that is wrong as written (no bucket, a query ...): usage
        raise typer.BadParameter(for_terminal(str(exc)), param_hint="-o") from None
    if problem := lake_url_problem(target.url):  # its query would become part of the key, secret and all
        raise typer.BadParameter(problem, param_hint="-o")
    if target.is_local:
        output_file(target.local_path(), "HTML file (-o report.html)", "-o")
    elif target.scheme in HTTP_SCHEMES:
        raise typer.BadParameter(
            f"{target}: http(s) URLs cannot be written; name a path or a bucket URL", param_hint="-o"
        )
    else:
        try:
            target.require_reachable()
            folder = target.is_dir()
        except OSError as exc:
            fail(str(exc), 1)
        if folder:
            raise typer.BadParameter(f"{target} is a folder; name the HTML file to write", param_hint="-o")
    return target


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
    except OSError as exc:  # a storage failure: exit 1, as in every command
        fail(str(exc), 1)
    if not found:
        fail(f"no lake folder at {root}; pass --lake or set {LAKE_ENV}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] binding {host}: anyone who can reach it can read the lake's documents"
        )
    console.print(Text(for_terminal(f"serving {root} on http://{host}:{port}/")))
    app = create_app(root, port=port, allowed_hosts=allow_host)
    uvicorn.run(app, host=host, port=port, log_level="warning")
