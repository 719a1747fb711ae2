"""Run-control commands (status, logs, cancel, show, runs) on run records that were edited, copied from
another lake, or written to do harm.

A lake is data: whatever a run.json says, a command acts only inside that run's folder and signals
only that run's own process. Every record here is written by `RunRecord.save` and then edited as a
user (or an attacker) would edit the file; the processes are real: a `sleep` that must survive.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from jobs.cli import app
from jobs.registry import SubmitInfo, foreign_log
from pipelines.framework.runrecord import CANCEL_FILE, RunRecord, StageRecord, now_iso

HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="milliseconds")


def _record(lake: Path, run_id: str = "r1", **fields: object) -> RunRecord:
    """A run record saved by the code's own RunRecord (a finished one unless `fields` say otherwise)."""
    values: dict[str, object] = {"status": "succeeded", **fields}
    record = RunRecord(run_id=run_id, job="job", dataset="job", lake=str(lake), **values)
    record.save()
    return record


def _edit(root: Path, run_id: str, /, **changes: object) -> Path:
    """Change fields of a saved run.json by hand, as a user with an editor would."""
    path = root / "_runs" / run_id / "run.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def _cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "300"}).invoke(app, list(args))


def _flat(result: Result) -> str:
    """The output with wrapping undone, so a message can be matched whole."""
    return " ".join(result.output.split())


def _running(lake: Path, run_id: str, pid: int, started_at: str | None = None) -> RunRecord:
    """A local run in progress whose record names `pid` on this host as its driver."""
    now = now_iso()
    return _record(
        lake,
        run_id,
        status="running",
        started_at=started_at or now,
        heartbeat_at=now,
        pid=pid,
        host=socket.gethostname(),
        stages=[StageRecord(id="load", stage="load", status="running")],
    )


def _submitted(record: RunRecord, pid: int | None) -> None:
    """The submit.json `refinery submit` leaves beside a record, naming `pid`'s group as its spark-submit."""
    info = SubmitInfo(
        command=["spark-submit"], master="spark://127.0.0.1:7077", deploy_mode="client", pid=pid
    )
    info.save(record.path.parent)


@pytest.fixture()
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process (its own session, like a submission's group) that no command may kill."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ 1. cancel signals only the run's own process
def test_cancel_leaves_alone_a_process_that_is_not_the_runs_driver(tmp_path, sleeper):
    """The record was edited to name an older, unrelated process: it is not signalled, and cancel says so."""
    time.sleep(0.1)
    _running(tmp_path, "r1", sleeper.pid)
    result = _cli("cancel", "r1", "--lake", str(tmp_path), "--grace", "1")
    assert result.exit_code == 0, result.output
    assert f"process {sleeper.pid} on this host does not look like this run's driver" in _flat(result)
    assert "it was not signalled" in _flat(result) and "(it runs: sleep)" in _flat(result)
    assert "sleep 600" not in _flat(result)  # another process's arguments may be its secrets: never shown
    time.sleep(0.5)
    assert sleeper.poll() is None  # alive
    assert (tmp_path / "_runs" / "r1" / CANCEL_FILE).is_file()  # the marker stops a real driver


def test_cancel_of_a_run_whose_pid_was_reused_marks_it_interrupted(tmp_path, sleeper):
    """The pid now belongs to a process that started after the run: the driver is gone."""
    _running(tmp_path, "r1", sleeper.pid, started_at=HOUR_AGO)
    result = _cli("cancel", "r1", "--lake", str(tmp_path), "--grace", "1")
    assert result.exit_code == 0, result.output
    assert f"pid {sleeper.pid} is now another process, started after the run" in _flat(result)
    assert "[interrupted]" in result.output
    time.sleep(0.5)
    assert sleeper.poll() is None
    saved = RunRecord.load(tmp_path, "r1")
    assert saved.status == "interrupted" and "not signalled" in saved.error
    assert "(it runs: sleep)" in saved.error and "sleep 600" not in saved.error  # not its arguments
    assert saved.stages[0].status == "failed"


def test_status_does_not_take_a_reused_pid_for_a_live_driver(tmp_path, sleeper):
    """A stale heartbeat and a pid that another process took since: interrupted, not running forever."""
    _running(tmp_path, "r1", sleeper.pid, started_at=HOUR_AGO)
    _edit(tmp_path, "r1", heartbeat_at=HOUR_AGO)
    result = _cli("status", "r1", "--lake", str(tmp_path))
    assert result.exit_code == 0 and "[interrupted]" in result.output
    assert sleeper.poll() is None


def test_cancel_leaves_alone_a_process_group_submit_json_names_wrongly(tmp_path, sleeper):
    """submit.json edited (or its pid reused) to name another process group: not signalled."""
    record = _running(tmp_path, "r1", os.getpid())
    _submitted(record, sleeper.pid)
    result = _cli("cancel", "r1", "--lake", str(tmp_path), "--grace", "1")
    assert result.exit_code == 0, result.output
    assert f"process group {sleeper.pid} on this host is not this run's spark-submit" in _flat(result)
    time.sleep(0.5)
    assert sleeper.poll() is None
    assert RunRecord.load(tmp_path, "r1").status == "interrupted"


@pytest.mark.skipif(
    not hasattr(os, "pidfd_open"), reason="pidfds are Linux's; elsewhere killpg is all there is"
)
def test_a_stale_listing_of_the_runs_group_signals_no_process_that_left_it(monkeypatch, sleeper):
    """Between listing a group and signalling, a member's pid may change hands: each member's group
    is read again through the pidfd that holds it, so a process of another group is not signalled
    (tests/jobs/test_registry.py checks that a real submission group is stopped whole)."""
    from pipelines.framework import run_processes

    group = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        monkeypatch.setattr(run_processes, "group_members", lambda pgid: [group.pid, sleeper.pid])
        run_processes.stop_group(group.pid, 1, lambda: True)
        assert group.wait(timeout=10) is not None
        assert sleeper.poll() is None
    finally:
        group.kill()
        group.wait()


@pytest.mark.parametrize("names", ["run id", "spec file"])
def test_cancel_still_stops_the_runs_own_driver(tmp_path, names):
    """A process that started before the run and names it (id, or spec file) is the driver: stopped."""
    spec = tmp_path / "job.yaml"
    argument = "r1" if names == "run id" else str(spec)
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "--run-id", argument])
    try:
        time.sleep(0.2)
        record = _running(tmp_path, "r1", driver.pid)
        _edit(tmp_path, "r1", spec_path=str(spec))
        result = _cli("cancel", "r1", "--lake", str(tmp_path), "--grace", "5")
        assert result.exit_code == 0, result.output
        assert driver.wait(timeout=10) is not None
        assert (
            "[cancelled]" in result.output and RunRecord.load(tmp_path, record.run_id).status == "cancelled"
        )
    finally:
        driver.kill()
        driver.wait()


def test_a_pid_that_would_signal_a_whole_group_makes_the_record_unreadable(tmp_path):
    """kill(0) signals the caller's own group and kill(-1) every process of the user."""
    _record(tmp_path, "r1")
    for pid in (0, -1):
        _edit(tmp_path, "r1", pid=pid, status="running")
        result = _cli("show", "r1", "--lake", str(tmp_path))
        assert result.exit_code == 2 and "is damaged" in _flat(result) and "pid" in _flat(result)


# ------------------------------------------------------------------ 2. logs are read only inside the run's folder
@pytest.mark.parametrize("named", ["/etc/passwd", "{run}/../../../outside.log", "{run}/link.log"])
def test_logs_refuses_a_log_outside_the_runs_folder(tmp_path, named):
    secret = tmp_path / "outside.log"
    secret.write_text("SECRET LINE\n")
    lake = tmp_path / "lake"
    run_folder = _record(lake, "r1").path.parent.local_path()
    (run_folder / "link.log").symlink_to(secret)
    log_path = named.format(run=run_folder)
    _edit(lake, "r1", log_path=log_path)
    result = _cli("logs", "r1", "--lake", str(lake))
    assert result.exit_code == 1 and "SECRET" not in result.output and "root:" not in result.output
    assert "not reading" in _flat(result) and "outside the run's folder" in _flat(result)
    status = _cli("status", "r1", "--lake", str(lake))
    assert status.exit_code == 0 and "SECRET" not in status.output and "root:" not in status.output


def test_logs_prints_a_log_inside_the_runs_folder(tmp_path):
    run_folder = _record(tmp_path, "r1").path.parent.local_path()
    (run_folder / "driver.log").write_text("one\ntwo\nthree \x1b[31mred\n")
    _edit(tmp_path, "r1", log_path=str(run_folder / "driver.log"))
    result = _cli("logs", "r1", "--lake", str(tmp_path), "-n", "2")
    assert result.exit_code == 0 and result.output == "two\nthree \\x1b[31mred\n"


def test_a_log_url_outside_the_runs_folder_on_object_storage_is_foreign():
    base = "s3://bucket/lake/_runs/r1"
    record = RunRecord(
        run_id="r1", job="j", dataset="j", lake="s3://bucket/lake", log_path=f"{base}/driver.log"
    )
    assert foreign_log(record) is None
    for outside in (f"{base}/../../../other/x.log", "s3://bucket/lake/_runs/r10/driver.log", "/etc/passwd"):
        record.log_path = outside
        assert foreign_log(record) == outside


# ------------------------------------------------------------------ 3. writes go to the lake the command names
def test_cancel_in_a_copied_lake_writes_only_into_the_copy(tmp_path):
    original = tmp_path / "original"
    _record(original, "r1", status="running", started_at=now_iso(), heartbeat_at=now_iso())
    before = (original / "_runs" / "r1" / "run.json").read_text()
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    elsewhere = tmp_path / "elsewhere"
    _edit(copy, "r1", lake=str(elsewhere))  # a hostile record picking where files go
    result = _cli("cancel", "r1", "--lake", str(copy))
    assert result.exit_code == 0 and "[cancelled]" in result.output
    assert (original / "_runs" / "r1" / "run.json").read_text() == before
    assert not (original / "_runs" / "r1" / CANCEL_FILE).exists() and not elsewhere.exists()
    assert RunRecord.load(copy, "r1").status == "cancelled"
    assert (copy / "_runs" / "r1" / CANCEL_FILE).is_file()


# ------------------------------------------------------------------ 4. a record must be its folder's run
def test_a_record_under_another_runs_folder_is_unreadable(tmp_path):
    _record(tmp_path, "r1")
    shutil.copytree(tmp_path / "_runs" / "r1", tmp_path / "_runs" / "zz-1")
    listing = _cli("runs", "--lake", str(tmp_path))
    assert listing.exit_code == 0 and listing.output.count("r1") == 1 and "zz-1" in _flat(listing)
    assert "1 run record(s) could not be read" in _flat(listing)
    for ref in ("zz-1", "zz"):
        result = _cli("show", ref, "--lake", str(tmp_path))
        assert result.exit_code == 2, result.output
        assert "records run 'r1', not 'zz-1' (its folder)" in _flat(result)


# ------------------------------------------------------------------ 5. over-long ids
@pytest.mark.parametrize("command", ["status", "show", "logs", "cancel"])
def test_an_overlong_run_id_is_a_clean_error(tmp_path, command):
    result = _cli(command, "a" * 300, "--lake", str(tmp_path))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "error:" in result.output and "at most 200 bytes" in _flat(result)


# ------------------------------------------------------------------ 6. damaged records
@pytest.mark.parametrize("content", ["not json {", "[]", '{"run_id": "r1", "stages": 5}'])
def test_show_of_a_damaged_record_names_the_file_and_what_to_do(tmp_path, content):
    path = _record(tmp_path, "r1").path.local_path()
    path.write_text(content)
    result = _cli("show", "r1", "--lake", str(tmp_path))
    assert result.exit_code == 2
    text = _flat(result)
    assert f"{path} is damaged, not a run record" in text and "restore it from a backup" in text
    assert "pydantic" not in text and "validation error" not in text


# ------------------------------------------------------------------ 7. stage names are escaped
def test_show_escapes_stage_ids_and_names_in_the_details(tmp_path):
    stage = StageRecord(id="evil\x1b[31m", stage="x\x1b]0;title\x07", status="succeeded", rows_in=1, kept=1)
    _record(tmp_path, "r1", stages=[stage])
    result = _cli("show", "r1", "--lake", str(tmp_path))
    assert result.exit_code == 0 and "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b[31m (x\\x1b]0;title\\x07) succeeded" in result.output


# ------------------------------------------------------------------ 8. logs options and missing logs
@pytest.mark.parametrize("tail", ["0", "-5"])
def test_logs_tail_must_be_positive(tmp_path, tail):
    _record(tmp_path, "r1")
    result = _cli("logs", "r1", "--lake", str(tmp_path), "-n", tail)
    assert result.exit_code == 2 and "--tail" in result.output


@pytest.mark.parametrize("follow", [[], ["-f"]])
def test_logs_of_a_submission_that_ended_without_one_says_so(tmp_path, follow):
    record = _record(tmp_path, "r1", status="failed")
    _submitted(record, None)
    result = _cli("logs", "r1", "--lake", str(tmp_path), *follow)
    assert result.exit_code == 1 and "run r1 failed without writing a log" in _flat(result)


@pytest.mark.parametrize("follow", [[], ["-f"]])
def test_logs_and_status_of_a_local_run_say_its_output_went_to_its_terminal(tmp_path, follow):
    """A local `refinery run` keeps no log file: neither command points at one that was never written."""
    _record(tmp_path, "r1", status="succeeded", log_path=str(tmp_path / "_runs" / "r1" / "driver.log"))
    result = _cli("logs", "r1", "--lake", str(tmp_path), *follow)
    assert result.exit_code == 1
    assert "run r1 ran locally: a local `refinery run` prints to the terminal that started it" in _flat(
        result
    )
    status = _cli("status", "r1", "--lake", str(tmp_path))
    assert status.exit_code == 0 and "log - (a local `refinery run` prints" in _flat(status)
    assert "driver.log" not in status.output


# ------------------------------------------------------------------ 9. cancel of an ended run
@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_cancel_of_an_ended_run_says_nothing_was_cancelled(tmp_path, status):
    _record(tmp_path, "r1", status=status)
    result = _cli("cancel", "r1", "--lake", str(tmp_path))
    assert result.exit_code == 0 and f"run r1 already {status}; nothing to cancel" in _flat(result)
    assert not (tmp_path / "_runs" / "r1" / CANCEL_FILE).exists()
    assert RunRecord.load(tmp_path, "r1").status == status


# ------------------------------------------------------------------ 10. a local cluster's record outlives its daemons
def test_cluster_stop_leaves_alone_the_pids_of_a_stale_cluster_record(tmp_path, sleeper):
    """cluster.json after a reboot or a kill names pids that other programs may hold now."""
    daemon = {"role": "master", "pid": sleeper.pid, "web_port": 8080, "log": "m.log", "port": 7077}
    state = {"workers": 0, "worker_cores": 1, "worker_memory": "1g", "master": daemon, "worker_daemons": []}
    (tmp_path / "cluster.json").write_text(json.dumps(state))
    result = _cli("cluster", "stop", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"master (pid {sleeper.pid}) was no longer running; nothing was signalled" in _flat(result)
    time.sleep(0.5)
    assert sleeper.poll() is None and not (tmp_path / "cluster.json").exists()


@pytest.mark.parametrize("content", ["{", "[]", '{"workers": 1}'])
def test_a_damaged_cluster_record_is_a_clean_error(tmp_path, content):
    (tmp_path / "cluster.json").write_text(content)
    result = _cli("cluster", "stop", "--dir", str(tmp_path))
    assert result.exit_code == 2 and "is not a cluster record" in _flat(result)
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ 11. a record copied to another lake names that lake's processes
def test_cancel_on_a_copied_lake_never_signals_the_original_lakes_submission(tmp_path):
    """The submission's command line names the run id, so only the lake the record was read from
    tells the copy's run from the original's: the copy's cancel leaves the real run alone."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    record = _running(original, "r1", os.getpid())
    driver = f"exec {sys.executable} -c 'import time; time.sleep(600)' --run-id r1"
    group = subprocess.Popen(["sh", "-c", driver], start_new_session=True)
    try:
        _submitted(record, group.pid)
        shutil.copytree(original, copy)
        result = _cli("cancel", "r1", "--lake", str(copy), "--grace", "1")
        assert result.exit_code == 0, result.output
        assert f"this run record was copied from the lake {original}" in _flat(result)
        time.sleep(0.5)
        assert group.poll() is None
        assert RunRecord.load(original, "r1").status == "running"
        assert RunRecord.load(copy, "r1").status == "interrupted"
        status = _cli("status", "r1", "--lake", str(original))
        assert status.exit_code == 0 and "running" in status.output
    finally:
        group.kill()
        group.wait()


def test_a_local_runs_record_copied_elsewhere_does_not_stop_its_driver(tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "--run-id", "r1"])
    try:
        time.sleep(0.2)
        _running(original, "r1", driver.pid)
        shutil.copytree(original, copy)
        result = _cli("cancel", "r1", "--lake", str(copy), "--grace", "1")
        assert result.exit_code == 0 and "copied from the lake" in _flat(result)
        time.sleep(0.5)
        assert driver.poll() is None and RunRecord.load(original, "r1").status == "running"
    finally:
        driver.kill()
        driver.wait()


def test_a_submission_group_left_with_only_zombies_is_gone_not_foreign(tmp_path):
    """spark-submit failed and its shell exited, but the shell's parent has not collected it yet: the
    run failed with spark-submit's code (the exit file), it was not 'interrupted' by a stranger."""
    record = _running(tmp_path, "r1", os.getpid(), started_at=HOUR_AGO)
    _edit(tmp_path, "r1", status="queued")
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "p = subprocess.Popen(['sh', '-c', 'exit 1'], start_new_session=True)\n"
            "print(p.pid, flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        zombie = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while (
            Path(f"/proc/{zombie}/stat").read_text().split(") ")[1][0] != "Z" and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        _submitted(record, zombie)
        (record.path.parent.local_path() / "exit_code").write_text("1\n")
        result = _cli("status", "r1", "--lake", str(tmp_path))
        assert result.exit_code == 0, result.output
        final = RunRecord.load(tmp_path, "r1")
        assert final.status == "failed" and "code 1" in final.error, final.error
    finally:
        parent.kill()
        parent.wait()
