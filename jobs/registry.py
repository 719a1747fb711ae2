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

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from jobs.cluster import process_group_alive, stop_process_group
from pipelines.framework.runrecord import CANCEL_FILE, RUNS_DIR, LakeRoot, RunRecord, list_runs, now_iso
from pipelines.framework.storage import Location

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
    pid: int | None = None
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
    path = run_dir(record) / SUBMIT_FILE
    return SubmitInfo.model_validate_json(path.read_text()) if path.is_file() else None


def log_file(record: RunRecord) -> Path:
    """The run's log: spark-submit's output for submitted runs, else what the runner recorded."""
    submitted = submit_folder(record) / LOG_FILE
    if submitted.exists() or record.log_path is None or "://" in record.log_path:
        return submitted
    return Path(record.log_path)


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


def submission_alive(info: SubmitInfo | None) -> bool | None:
    """Whether the spark-submit process group still runs; None when it runs on another host."""
    if info is None or info.pid is None:
        return False
    if info.host != socket.gethostname():
        return None
    return process_group_alive(info.pid)


def _error_lines(log: Path, limit: int = 8) -> str:
    """The log's last lines that look like errors: what a user needs to see first."""
    if not log.is_file():
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
    if info is None or record.status in TERMINAL or submission_alive(info) is not False:
        return _with_log_app_id(record)
    return finalize(record)


def finalize(record: RunRecord) -> RunRecord:
    """Give a run whose processes are all gone its final status (only called then)."""
    code = exit_code(record)
    log = log_file(record)
    if record.cancel_requested:
        record.status = "cancelled"
        record.error = record.error if record.error and "cancel" in record.error else "cancelled by the user"
    elif record.status == "queued":
        record.status = "failed"
        record.error = f"spark-submit exited with code {code} before the run started; see {log}"
        record.error_cause = _error_lines(log) or None
    else:
        record.status = "interrupted"
        record.error = record.error or (
            f"the driver exited (spark-submit code {code}) without recording an end; see {log}"
        )
        record.error_cause = record.error_cause or _error_lines(log) or None
    for stage in record.stages:
        if stage.status == "running":
            stage.status, stage.error = "failed", record.status
    record.ended_at = record.ended_at or now_iso()
    _with_log_app_id(record)
    record.save()
    return record


def _with_log_app_id(record: RunRecord) -> RunRecord:
    """Fill a missing application id from the log (YARN/k8s print it before the driver runs)."""
    if record.app_id is None and (log := log_file(record)).is_file():
        record.app_id = parse_app_id(log.read_text(errors="replace"))
    return record


def cancel(lake: LakeRoot, run_id: str, grace: float = 15.0) -> RunRecord:
    """Cancel a run: leave the marker, stop the submission's process group, kill the application.

    The marker stops a driver that cannot be signalled (cluster deploy mode, another
    host) at the next stage boundary; the kill request to the cluster manager frees
    executors even where the driver is unreachable.
    """
    record = load_run(lake, run_id)
    run_id = record.run_id
    if record.status in TERMINAL:
        return record
    (run_dir(record) / CANCEL_FILE).write_text(now_iso())
    info = submit_info(record)
    local = submission_alive(info)
    if local and info is not None and info.pid is not None:
        stop_process_group(info.pid, grace)
    app_id = _with_log_app_id(RunRecord.load(lake, run_id)).app_id
    if info is not None:
        kill_application(info, app_id)
    if local is None and info is not None:
        return RunRecord.load(lake, run_id)  # the remote driver records "cancelled" itself
    if info is None and record.pid is not None and record.host == socket.gethostname():
        _stop_pid(record.pid, grace)  # a local `refinery run`
    final = RunRecord.load(lake, run_id)
    return final if final.status in ("succeeded", "cancelled") else finalize(final)


def _stop_pid(pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_application(info: SubmitInfo, app_id: str | None) -> str | None:
    """Ask the cluster manager to kill the application; returns what was done (None: nothing to do)."""
    if info.master.startswith("spark://") and app_id and info.master_ui:
        return _kill_standalone_app(info.master_ui, app_id)
    if info.master.startswith("k8s://") and info.k8s_driver:
        command = [info.command[0], "--master", info.master, "--kill", info.k8s_driver]
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
