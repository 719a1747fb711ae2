"""The run registry: what `refinery submit/status/logs/cancel` do with run records.

A submitted run's folder `<lake>/_runs/<run_id>/` holds
  run.json        the RunRecord (pipelines.framework.runrecord); see "who writes it" below
  submit.json     how it was submitted: the spark-submit command, its pid (= process
                  group) and host, master, deploy mode, where to send a kill
  cancel.requested  left by `refinery cancel`; drivers check it between stages
and the submission's local folder (`submit_folder`) holds what the submitting machine's own
processes write as plain files:
  submit.log      spark-submit's stdout and stderr (client mode: the driver's too)
  exit_code       spark-submit's exit status, written by the wrapper shell when it ends
  code.zip        the code shipped with --py-files
On a lake on local disk that folder is the run's folder itself. On object storage it is
`$REFINERY_SUBMISSIONS/<run_id>` (default ~/.refinery/submissions): a shell redirect and `mv`
cannot write to a bucket, and only the submitting host can see its process group anyway.

Who writes run.json: `submit` writes it once (status queued) before spark-submit starts;
from then on only the driver writes it (running, per-stage progress, the final
status). Another process writes it only once the submission's process group is gone,
to finalize a run whose driver could not (spark-submit failed before the driver
started, the driver was killed, the run was cancelled). One writer at a time, so no
update is ever lost.
"""

from __future__ import annotations

import os
import posixpath
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from jobs.cluster import spark_home
from pipelines.framework.run_processes import (
    ProcessCheck,
    driver_check,
    group_alive,
    group_check,
    stop_group,
    stop_pid,
)
from pipelines.framework.runrecord import (
    CANCEL_FILE,
    RUNS_DIR,
    LakeRoot,
    RunRecord,
    RunRecordUnreadable,
    list_runs,
    now_iso,
)
from pipelines.framework.storage import Location
from pipelines.framework.validation import field_problems

SUBMISSIONS_ENV = "REFINERY_SUBMISSIONS"
SUBMIT_FILE = "submit.json"
LOG_FILE = "submit.log"
EXIT_FILE = "exit_code"
TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
APP_ID_PATTERNS = (
    re.compile(r"\b(app-\d{14}-\d{4,})\b"),  # standalone
    re.compile(r"\b(application_\d{10,}_\d{4,})\b"),  # YARN
    re.compile(r"\b(spark-[0-9a-f]{32})\b"),  # Kubernetes
    re.compile(r"\b(local-\d{13})\b"),  # local[*]
)


class SubmitInfo(BaseModel):
    """How a run was submitted; written by `refinery submit`, read by status/logs/cancel."""

    command: list[str]
    master: str
    deploy_mode: str
    pid: int | None = Field(default=None, gt=0)  # 0 and -1 would signal whole process groups
    host: str = Field(default_factory=socket.gethostname)
    submitted_at: str = Field(default_factory=now_iso)
    master_ui: str | None = None
    k8s_driver: str | None = None

    def save(self, run_dir: Location) -> None:
        (run_dir / SUBMIT_FILE).write_text(self.model_dump_json(indent=2))


def resolve_run_id(lake: LakeRoot, ref: str) -> str:
    """The run id that `ref` names: an exact id, `latest`, or a prefix of exactly one id.

    Run ids are long (job, timestamp, random suffix) and users type them from a listing, so
    any unique prefix will do; an ambiguous one is an error that lists the candidates.
    """
    runs_dir = Location.parse(lake) / RUNS_DIR
    if ref == "latest":
        runs = list_runs(lake)
        if not runs:
            raise FileNotFoundError(f"no runs under {runs_dir}")
        return runs[0].run_id
    RunRecord.directory(lake, ref)  # rejects ids that would leave the runs folder
    if (runs_dir / ref / "run.json").is_file():
        return ref
    known = sorted(entry.location.parent.name for entry in runs_dir.glob("*/run.json"))
    matches = [run_id for run_id in known if run_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"run id prefix {ref!r} is ambiguous; it matches: {', '.join(matches)}")
    raise FileNotFoundError(f"no run {ref!r} under {runs_dir}; `refinery runs` lists them")


def load_run(lake: LakeRoot, ref: str) -> RunRecord:
    """The run that `ref` names (see `resolve_run_id`)."""
    return RunRecord.load(lake, resolve_run_id(lake, ref))


def run_dir(record: RunRecord) -> Location:
    return Location.parse(record.path).parent


def submit_folder(record: RunRecord) -> Path:
    """The local folder of the submission's log, exit status and code (see the module docstring)."""
    folder = run_dir(record)
    if folder.is_local:
        return folder.local_path()
    base = os.environ.get(SUBMISSIONS_ENV) or Path.home() / ".refinery" / "submissions"
    return Path(base) / record.run_id


def submit_info(record: RunRecord) -> SubmitInfo | None:
    """How the run was submitted (None: it was not); a damaged submit.json is an error naming it."""
    path = run_dir(record) / SUBMIT_FILE
    if not path.is_file():
        return None
    try:
        return SubmitInfo.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise RunRecordUnreadable(
            f"{path} is damaged: {field_problems(exc, root='the file')}; restore it or move the run's "
            f"folder {run_dir(record)} out of the lake"
        ) from None


def log_file(record: RunRecord) -> Path:
    """Where the run's log is: spark-submit's output for submitted runs, else what the runner recorded
    when that lies in the run's own folders (see `foreign_log`)."""
    submitted = submit_folder(record) / LOG_FILE
    named = record.log_path
    if submitted.exists() or named is None or "://" in named or foreign_log(record):
        return submitted
    return Path(named)


def foreign_log(record: RunRecord) -> str | None:
    """The log path the record names when it lies outside the run's folders, else None.

    A lake is data: an edited record, or one copied from another lake, could name any file
    (/etc/passwd, another user's log); such a path is reported, never read."""
    named = record.log_path
    if named is None or any(_within(named, folder) for folder in _log_folders(record)):
        return None
    return named


def readable_log(record: RunRecord) -> Path | None:
    """The run's log when it is a file that resolves inside the run's folders (a link planted in a
    lake leads nowhere else); None when there is none to read."""
    path = log_file(record)
    if path.is_file() and any(_within(str(path), folder) for folder in _log_folders(record)):
        return path
    return None


def _log_folders(record: RunRecord) -> tuple[str, ...]:
    return str(run_dir(record)), str(submit_folder(record))


def _within(path: str, folder: str) -> bool:
    """Whether `path` lies in `folder` once links and '..' are resolved (for URLs, '..' only)."""
    if "://" in path or "://" in folder:
        scheme, _, rest = path.partition("://")
        return f"{scheme}://{posixpath.normpath(rest)}".startswith(folder.rstrip("/") + "/")
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def exit_code(record: RunRecord) -> int | None:
    path = submit_folder(record) / EXIT_FILE
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def parse_app_id(text: str) -> str | None:
    """The first Spark application id in a log (standalone, YARN, Kubernetes or local form)."""
    for pattern in APP_ID_PATTERNS:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return None


def submission_alive(info: SubmitInfo | None, record: RunRecord | None = None) -> bool | None:
    """Whether the spark-submit process group still runs; None when it runs on another host.

    Given the run's record, a live group that is not this run's submission counts as gone."""
    if record is not None:
        return submission_check(record, info).alive
    if info is None or info.pid is None:
        return False
    if info.host != socket.gethostname():
        return None
    return group_alive(info.pid)


def submission_check(record: RunRecord, info: SubmitInfo | None) -> ProcessCheck:
    """Whether the process group submit.json names runs this run's spark-submit (see `group_check`)."""
    if info is None or info.pid is None:
        return ProcessCheck(False)
    if info.host != socket.gethostname():
        return ProcessCheck(None)
    if not group_alive(info.pid):
        return ProcessCheck(False)
    return group_check(record, info.pid, str(submit_folder(record) / EXIT_FILE))


def _error_lines(log: Path | None, limit: int = 8) -> str:
    """The log's last lines that look like errors: what a user needs to see first."""
    if log is None or not log.is_file():
        return ""
    lines = log.read_text(errors="replace").splitlines()
    hits = [ln for ln in lines if re.search(r"Error|Exception|error:|Caused by", ln)]
    return "\n".join((hits or lines)[-limit:])


def refresh(lake: LakeRoot, run_id: str) -> RunRecord:
    """Load a run and settle its status against its submission process.

    A run still "queued" or "running" whose spark-submit process group is gone did
    not end by itself: it is finalized here (failed before the driver started,
    cancelled, or interrupted) and saved, so it never stays "running".
    """
    record = load_run(lake, run_id)
    info = submit_info(record)
    if info is None or record.status in TERMINAL:
        return _with_log_app_id(record)
    check = submission_check(record, info)
    return _with_log_app_id(record) if check.alive is not False else finalize(record, check.note)


def finalize(record: RunRecord, gone: str | None = None) -> RunRecord:
    """Give a run whose processes are all gone its final status (only called then).

    `gone` says why the process the run names is not its own (a reused pid, an edited record): the
    run ended unseen, so it is interrupted, whatever a cancel asked."""
    code = exit_code(record)
    log = log_file(record)
    if gone:
        record.status, record.error = "interrupted", f"the run's process is gone: {gone}"
    elif record.cancel_requested:
        record.status = "cancelled"
        record.error = record.error if record.error and "cancel" in record.error else "cancelled by the user"
    elif record.status == "queued":
        record.status = "failed"
        record.error = f"spark-submit exited with code {code} before the run started; see {log}"
        record.error_cause = _error_lines(readable_log(record)) or None
    else:
        record.status = "interrupted"
        record.error = record.error or (
            f"the driver exited (spark-submit code {code}) without recording an end; see {log}"
        )
        record.error_cause = record.error_cause or _error_lines(readable_log(record)) or None
    for stage in record.stages:
        if stage.status == "running":
            stage.status, stage.error = "failed", record.status
    record.ended_at = record.ended_at or now_iso()
    _with_log_app_id(record)
    record.save()
    return record


def _with_log_app_id(record: RunRecord) -> RunRecord:
    """Fill a missing application id from the log (YARN/k8s print it before the driver runs)."""
    if record.app_id is None and (log := readable_log(record)) is not None:
        record.app_id = parse_app_id(log.read_text(errors="replace"))
    return record


def _quiet(note: str) -> None:
    """Where `cancel` reports what it found when nobody asked to hear it."""


def cancel(
    lake: LakeRoot, run_id: str, grace: float = 15.0, say: Callable[[str], None] = _quiet
) -> RunRecord:
    """Cancel a run: leave the marker, stop the submission's process group, kill the application.

    The marker stops a driver that cannot be signalled (cluster deploy mode, another
    host) at the next stage boundary; the kill request to the cluster manager frees
    executors even where the driver is unreachable. Only a process verified to be the
    run's own is signalled (`submission_check`, `driver_check`); `say` hears what was found
    instead, and that a run that had already ended was left alone.
    """
    record = load_run(lake, run_id)
    if record.status in TERMINAL:
        say(f"run {record.run_id} already {record.status}; nothing to cancel")
        return record
    (run_dir(record) / CANCEL_FILE).write_text(now_iso())
    info = submit_info(record)
    if info is None:  # a local `refinery run`
        check = driver_check(record) if record.host == socket.gethostname() else ProcessCheck(False)
        if check.alive and record.pid is not None:
            stop_pid(record.pid, grace, lambda: driver_check(record).alive is True)
    else:
        check = submission_check(record, info)
        if check.alive and info.pid is not None:
            stop_group(info.pid, grace, lambda: submission_check(record, info).alive is True)
        kill_application(info, _with_log_app_id(load_run(lake, record.run_id)).app_id)
    if check.note:
        say(check.note)
    final = load_run(lake, record.run_id)
    if check.alive is None or final.status in ("succeeded", "cancelled"):
        return final  # a driver this host cannot signal records "cancelled" itself
    return finalize(final, check.note)


def kill_application(info: SubmitInfo, app_id: str | None) -> str | None:
    """Ask the cluster manager to kill the application; returns what was done (None: nothing to do)."""
    master_ui = info.master_ui or ""  # a URL from the lake: only ever an http(s) POST
    if info.master.startswith("spark://") and app_id and master_ui.startswith(("http://", "https://")):
        return _kill_standalone_app(master_ui, app_id)
    if info.master.startswith("k8s://") and info.k8s_driver:
        # This installation's spark-submit, not the one submit.json names: a file in a lake never
        # picks a program to run.
        spark_submit = str(spark_home() / "bin" / "spark-submit")
        command = [spark_submit, "--master", info.master, "--kill", info.k8s_driver]
        subprocess.run(command, capture_output=True, timeout=120, check=False)
        return " ".join(command)
    if info.master == "yarn" and app_id and app_id.startswith("application_"):
        command = ["yarn", "application", "-kill", app_id]
        try:
            subprocess.run(command, capture_output=True, timeout=120, check=False)
        except FileNotFoundError:
            return None
        return " ".join(command)
    return None


def _kill_standalone_app(master_ui: str, app_id: str) -> str | None:
    """POST to the standalone master's UI kill endpoint (the same button the UI shows)."""
    data = urllib.parse.urlencode({"id": app_id, "terminate": "true"}).encode()
    url = f"{master_ui.rstrip('/')}/app/kill/"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10):
            pass
    except OSError:
        return None
    return f"POST {url} id={app_id}"


def follow(path: Path, done: Callable[[], bool], poll: float = 0.5, from_start: bool = True) -> Iterator[str]:
    """Yield a log's lines as they are written until `done()` and the file has no more."""
    while not path.exists():
        if done():
            return
        time.sleep(poll)
    with path.open(errors="replace") as handle:
        if not from_start:
            handle.seek(0, os.SEEK_END)
        pending = ""
        finished = False
        while True:
            chunk = handle.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split("\n")
                yield from lines
                continue
            if finished:
                if pending:
                    yield pending
                return
            finished = done()  # read once more after the end: nothing written last is lost
            if not finished:
                time.sleep(poll)
