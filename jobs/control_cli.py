"""CLI verbs of the control plane: submit, status, logs, cancel, and a local standalone cluster.

Mounted on `refinery` through jobs/mount.py (one command each, plus the `cluster`
group); `app` bundles them for tests and for `python -m jobs.control_cli`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from pipelines.framework.cli_options import LakeOption, RunIdOption, fail, lake_root
from pipelines.framework.terminal_table import print_table
from pipelines.framework.terminal_text import for_terminal
from pipelines.framework.validation import field_problems

if TYPE_CHECKING:
    from pipelines.framework.runrecord import RunRecord

app = typer.Typer(help="Submit jobs to a Spark cluster and follow them.", no_args_is_help=True)
cluster_app = typer.Typer(help="A Spark standalone master and workers on 127.0.0.1.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
console = Console()
err = Console(stderr=True)

EXIT_CODES = {"succeeded": 0, "failed": 1, "interrupted": 1, "cancelled": 3}


LOCAL_RUN_OUTPUT = "a local `refinery run` prints to the terminal that started it and keeps no log file"


def _say(line: str) -> None:
    """A line that may hold paths, names or log text: escaped, never read as markup."""
    console.print(Text(for_terminal(line)))


def _parse_conf(pairs: list[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--conf {pair!r}: expected KEY=VALUE, e.g. --conf spark.sql.shuffle.partitions=64")
        conf[key.strip()] = value
    return conf


def _wait(lake: str, run_id: str, follow: bool) -> None:
    """Wait for the submission to end (streaming its log when asked); Ctrl-C cancels the run."""
    from jobs.registry import follow as follow_log
    from jobs.registry import log_file, submission_alive, submit_info
    from pipelines.framework.runrecord import RunRecord

    record = RunRecord.load(lake, run_id)
    info = submit_info(record)

    def done() -> bool:
        return submission_alive(info, record) is False

    try:
        if follow:
            for line in follow_log(log_file(record), done):
                _say(line)
        else:
            while not done():
                time.sleep(1.0)
    except KeyboardInterrupt:
        from jobs.registry import cancel

        err.print(Text(for_terminal(f"cancelling {run_id} ...")))
        cancel(lake, run_id)


def _submitted(spec: Path, run_id: str | None, conf: list[str], **settings: Any) -> RunRecord:
    """The submitted run's record; a bad option (named by its field) or spec is a usage error."""
    from pydantic import ValidationError

    from jobs.submit import SubmitError, SubmitOptions, submit
    from pipelines.framework.spec import SpecError

    try:
        return submit(spec, SubmitOptions(conf=_parse_conf(conf), **settings), run_id=run_id, wait=False)
    except ValidationError as exc:
        fail(field_problems(exc, root="options"))
    except (SpecError, SubmitError) as exc:
        fail(str(exc))


def submit_cmd(
    spec: Path = typer.Argument(..., help="Job spec YAML file."),
    master: str = typer.Option(..., "--master", help="spark://HOST:PORT, k8s://https://HOST:PORT or yarn."),
    deploy_mode: str = typer.Option("client", help="client (driver here) or cluster (YARN/Kubernetes only)."),
    conf: list[str] = typer.Option(
        [], "--conf", help="Spark setting KEY=VALUE (repeatable); wins over the spec."
    ),
    driver_memory: str | None = typer.Option(None, help="spark.driver.memory, e.g. 4g."),
    executor_memory: str | None = typer.Option(None, help="spark.executor.memory, e.g. 8g."),
    executor_cores: int | None = typer.Option(None, help="spark.executor.cores."),
    total_executor_cores: int | None = typer.Option(None, help="spark.cores.max (standalone)."),
    num_executors: int | None = typer.Option(None, help="spark.executor.instances (YARN, Kubernetes)."),
    venv: Path | None = typer.Option(None, help="Pack this virtual environment and ship it with --archives."),
    archive: Path | None = typer.Option(None, help="A ready venv-pack/conda-pack archive to ship instead."),
    worker_python: str | None = typer.Option(
        None, help="Python on the workers (default: this interpreter's path)."
    ),
    master_ui: str | None = typer.Option(
        None, help="Standalone master web UI, for cancel (default http://HOST:8080)."
    ),
    run_id: str | None = RunIdOption,
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Return once submitted; follow with status/logs."
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream the log while waiting."),
) -> None:
    """Submit a job spec to a Spark cluster; the run is recorded in the spec's lake."""
    from jobs.registry import refresh

    record = _submitted(
        spec,
        run_id,
        conf,
        master=master,
        deploy_mode=deploy_mode,
        driver_memory=driver_memory,
        executor_memory=executor_memory,
        executor_cores=executor_cores,
        total_executor_cores=total_executor_cores,
        num_executors=num_executors,
        venv=venv,
        archive=archive,
        worker_python=worker_python,
        master_ui=master_ui,
    )
    _say(f"submitted {record.run_id} to {master} ({deploy_mode} mode); log: {record.log_path}")
    if detach:
        _say(f"follow it with: refinery status {record.run_id} --lake {record.lake}")
        return
    _wait(record.lake, record.run_id, follow)
    final = refresh(record.lake, record.run_id)
    _print_status(final)
    raise typer.Exit(EXIT_CODES.get(final.status, 1))


def _print_status(record) -> None:
    from jobs.registry import foreign_log, log_file, readable_log, submit_info

    console.print(Text(for_terminal(f"{record.run_id} [{record.status}]  job {record.job}"), style="bold"))
    _say(f"  master {record.master} ({record.deploy_mode})  application {record.app_id or '-'}")
    _say(f"  created {record.created_at}  started {record.started_at or '-'}")
    _say(f"  ended {record.ended_at or '-'}")
    if record.stages:
        print_table(
            console,
            ("stage", "status", "seconds", "inputs", "outputs"),
            [
                (
                    s.id,
                    s.status,
                    "" if s.seconds is None else f"{s.seconds:.1f}",
                    [f"{k} v{v}" for k, v in s.inputs.items()],
                    [f"{k} v{v}" for k, v in s.outputs.items()],
                )
                for s in record.stages
            ],
            right=("seconds",),
        )
    if record.error:
        err.print(Text(for_terminal(record.error, keep_newlines=True), style="red"))
    if record.error_cause:
        err.print(Text(for_terminal(record.error_cause, keep_newlines=True)))
    if submit_info(record) is None and readable_log(record) is None and not foreign_log(record):
        _say(f"  log -  ({LOCAL_RUN_OUTPUT})")
    else:
        _say(f"  log {log_file(record)}")
    if foreign_log(record):
        _say(f"  (not read: the record names the log {foreign_log(record)}, outside the run's folder)")


def status_cmd(
    run_id: str = typer.Argument(..., help="Run id, a unique prefix of one, or `latest`."),
    lake: str | None = LakeOption,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a run's status, application id, per-stage progress and error."""
    from jobs.registry import refresh

    try:
        record = refresh(lake_root(lake), run_id)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print(record.model_dump_json(indent=2))
        return
    _print_status(record)


def logs_cmd(
    run_id: str = typer.Argument(..., help="Run id, a unique prefix of one, or `latest`."),
    lake: str | None = LakeOption,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the run ends."),
    tail: int | None = typer.Option(
        None, "--tail", "-n", min=1, help="Only the last N lines, N >= 1 (before following)."
    ),
) -> None:
    """Print a run's driver log (spark-submit output); --follow streams it until the run ends."""
    from jobs.registry import TERMINAL, readable_log, refresh, submission_alive, submit_info

    try:
        record = refresh(lake_root(lake), run_id)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    path = readable_log(record)
    if not follow or record.status in TERMINAL:
        if path is None:
            _no_log(record)
        lines = path.read_text(errors="replace").splitlines()
        for line in lines[-tail:] if tail else lines:
            print(for_terminal(line))
        return
    info = submit_info(record)

    def done() -> bool:
        if info is not None:
            return submission_alive(info, record) is False
        return refresh(lake_root(lake), record.run_id).status in TERMINAL

    _follow(record, done, tail)


def _follow(record: RunRecord, done: Callable[[], bool], tail: int | None) -> None:
    """Print the log of a running run as it grows, from its last `tail` lines; say so when it ends with none."""
    from jobs.registry import follow as follow_log
    from jobs.registry import log_file, readable_log

    path = readable_log(record)
    skip = 0
    if tail and path is not None:
        skip = max(0, path.read_text(errors="replace").count("\n") - tail)
    if path is None and log_file(record).exists():  # there, but leads outside the run's folder
        _no_log(record)
    for index, line in enumerate(follow_log(log_file(record), done)):
        if index >= skip:
            print(for_terminal(line), flush=True)
    if readable_log(record) is None:
        _no_log(record, ended=True)


def _no_log(record: RunRecord, ended: bool = False) -> NoReturn:
    """Why there is no log to print: the record names one outside the run's folder, the run ended
    without one, or it has not written one yet."""
    from jobs.registry import TERMINAL, foreign_log, log_file, submit_info

    path, named = log_file(record), foreign_log(record)
    if named:
        fail(
            f"not reading {named}: the record of run {record.run_id} names a log outside the run's "
            "folder (an edited record, or one copied from another lake)",
            1,
        )
    if path.exists():
        fail(f"not reading {path}: it leads outside the run's folder (a link?)", 1)
    if submit_info(record) is None:
        fail(f"run {record.run_id} ran locally: {LOCAL_RUN_OUTPUT}", 1)
    if ended or record.status in TERMINAL:
        state = record.status if record.status in TERMINAL else "ended"
        fail(f"run {record.run_id} {state} without writing a log (looked for {path})", 1)
    fail(f"no log yet at {path}")


def cancel_cmd(
    run_id: str = typer.Argument(..., help="Run id, a unique prefix of one, or `latest`."),
    lake: str | None = LakeOption,
    grace: float = typer.Option(15.0, help="Seconds between SIGTERM and SIGKILL."),
) -> None:
    """Cancel a run: stop its driver, kill its application on the cluster, mark it cancelled.

    Only a process verified to be the run's own is signalled; a run that already ended is left as it
    is (exit 0, saying so)."""
    from jobs.registry import cancel

    try:
        record = cancel(lake_root(lake), run_id, grace=grace, say=_note)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    _print_status(record)


def _note(line: str) -> None:
    """What cancel found, on stderr (the status follows on stdout)."""
    err.print(Text(for_terminal(line), style="yellow"))


def _cluster_dir(state_dir: Path | None) -> Path:
    return Path(state_dir or os.environ.get("REFINERY_CLUSTER_DIR", Path.home() / ".refinery" / "cluster"))


ClusterDirOption = typer.Option(
    None, "--dir", help="State folder (default $REFINERY_CLUSTER_DIR or ~/.refinery/cluster)."
)


@cluster_app.command("start")
def cluster_start(
    state_dir: Path | None = ClusterDirOption,
    workers: int = typer.Option(1, help="Worker processes."),
    cores: int = typer.Option(1, help="Cores per worker."),
    memory: str = typer.Option("2g", help="Memory per worker (executors share it)."),
) -> None:
    """Start a standalone master and workers on 127.0.0.1 (random free ports)."""
    from jobs.cluster import STATE_FILE, ClusterError, LocalCluster

    folder = _cluster_dir(state_dir)
    if (folder / STATE_FILE).exists():
        fail(f"a cluster is already recorded in {folder}; `refinery cluster stop --dir {folder}` first")
    try:
        cluster = LocalCluster(folder, workers=workers, worker_cores=cores, worker_memory=memory).start()
    except ClusterError as exc:
        fail(str(exc), 1)
    _say(f"master {cluster.url}  web UI {cluster.web_url}  ({workers} x {cores} cores, {memory})")
    _say(f"submit with: refinery submit SPEC --master {cluster.url} --master-ui {cluster.web_url}")


@cluster_app.command("stop")
def cluster_stop(state_dir: Path | None = ClusterDirOption) -> None:
    """Stop the recorded master and workers by their process groups."""
    from jobs.cluster import ClusterError, LocalCluster

    try:
        gone = LocalCluster.load(_cluster_dir(state_dir)).stop()
    except ClusterError as exc:
        fail(str(exc))
    for line in gone:
        _say(line)
    console.print("stopped")


@cluster_app.command("status")
def cluster_status(
    state_dir: Path | None = ClusterDirOption,
    as_json: bool = typer.Option(False, "--json", help="The master's own JSON state."),
) -> None:
    """Workers and applications as the master reports them."""
    import json

    from jobs.cluster import ClusterError, LocalCluster

    try:
        cluster = LocalCluster.load(_cluster_dir(state_dir))
    except ClusterError as exc:
        fail(str(exc))
    state = cluster.master_state()
    if state is None:
        fail(f"the master at {cluster.web_url} does not answer; its log: {cluster.master.log}", 1)
    if as_json:
        print(json.dumps(state, indent=2))
        return
    _say(f"master {cluster.url}  web UI {cluster.web_url}  status {state.get('status')}")
    print_table(
        console,
        ("worker", "state", "cores used"),
        [(w["id"], w["state"], f"{w['coresused']}/{w['cores']}") for w in state.get("workers", [])],
    )
    apps = [a for key in ("activeapps", "completedapps") for a in state.get(key, [])]
    if apps:
        print_table(
            console, ("application", "name", "state"), [(a["id"], a["name"], a["state"]) for a in apps]
        )


for _name, _command in (
    ("submit", submit_cmd),
    ("status", status_cmd),
    ("logs", logs_cmd),
    ("cancel", cancel_cmd),
):
    app.command(_name)(_command)


if __name__ == "__main__":
    app()
