"""Registry, packaging and CLI behaviour that needs no cluster: real processes, real files, fast."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from jobs.control_cli import app as control_app
from jobs.registry import (
    SubmitInfo,
    cancel,
    follow,
    parse_app_id,
    refresh,
    submission_alive,
    submit_info,
)
from jobs.submit import (
    SubmitOptions,
    _launch,
    build_command,
    pack_venv,
    package_code,
    queued_record,
    stage_packages,
)
from pipelines.framework.runrecord import CANCEL_FILE
from pipelines.framework.spec import parse_spec

SLEEP = "tests.jobs.stages_for_cluster:SleepPass"


def _spec(tmp_path: Path):
    spec, stages = parse_spec({"name": "reg", "lake": str(tmp_path / "lake"), "stages": [{"stage": SLEEP}]})
    path = tmp_path / "reg.yaml"
    path.write_text("name: reg\n")
    return spec, stages, path


def _started(tmp_path: Path, command: list[str], run_id: str):
    """A queued run whose 'spark-submit' is `command`, launched the way submit launches it."""
    spec, _, path = _spec(tmp_path)
    record = queued_record(spec, path, SubmitOptions(master="spark://127.0.0.1:7077"), run_id)
    folder = record.path.parent
    proc = _launch(command, folder, dict(os.environ))
    SubmitInfo(command=command, master="spark://127.0.0.1:7077", deploy_mode="client", pid=proc.pid).save(
        folder
    )
    return record, proc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20261128162424-0000",
            "app-20261128162424-0000",
        ),
        (
            "INFO Client: Submitted application application_1700000000000_0042",
            "application_1700000000000_0042",
        ),
        (
            "spark-app-selector -> spark-0123456789abcdef0123456789abcdef",
            "spark-0123456789abcdef0123456789abcdef",
        ),
        ("nothing here", None),
    ],
)
def test_parse_app_id(text, expected):
    assert parse_app_id(text) == expected


def _env_archive(path: Path, member: str = "bin/python") -> Path:
    """A minimal environment archive as venv-pack lays one out (bin/python at its root)."""
    (path.parent / "payload").write_text("#!/bin/sh\n")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(path.parent / "payload", arcname=member)
    return path


def test_options_refuse_what_spark_cannot_do(tmp_path):
    with pytest.raises(ValidationError, match="standalone does not run Python applications in cluster"):
        SubmitOptions(master="spark://h:7077", deploy_mode="cluster")
    with pytest.raises(ValidationError, match="use `refinery run`"):
        SubmitOptions(master="local[2]")
    with pytest.raises(ValidationError, match="not both"):
        SubmitOptions(master="yarn", venv=Path("v"), archive=_env_archive(tmp_path / "a.tar.gz"))
    result = CliRunner().invoke(
        control_app, ["submit", "x.yaml", "--master", "spark://h:7077", "--deploy-mode", "cluster"]
    )
    assert result.exit_code == 2 and "deploy mode" in result.output


@pytest.mark.parametrize(
    ("master", "says"),
    [
        ("nonsense", "is not a Spark master URL"),
        ("bogus://x:1", "is not a Spark master URL"),
        ("spark://host", "each master is HOST:PORT"),
        ("spark://\x1b[31mhost:7077", "Invalid IPv6 URL"),
        ("spark://a:7077,b:port", "Port could not be cast"),
    ],
)
def test_a_master_spark_submit_could_not_reach_is_refused_before_submitting(master: str, says: str):
    with pytest.raises(ValidationError, match=says):
        SubmitOptions(master=master)
    result = CliRunner(env={"COLUMNS": "400"}).invoke(control_app, ["submit", "x.yaml", "--master", master])
    assert result.exit_code == 2 and "master" in result.output and "\x1b[31m" not in result.output


def test_an_archive_spark_could_not_unpack_into_an_environment_is_refused(tmp_path):
    """`--archive notes.txt` was accepted; the executors would have failed on a missing ./environment/bin/python."""
    (tmp_path / "notes.txt").write_text("not an archive")
    (tmp_path / "fake.tar.gz").write_text("not an archive either")
    cases = [
        (tmp_path / "missing.tar.gz", "is not a file"),
        (tmp_path / "notes.txt", "unpacks only .tar.gz, .tgz, .tar, .zip"),
        (tmp_path / "fake.tar.gz", "is not a readable tar or zip archive"),
        (_env_archive(tmp_path / "lib.tar.gz", "lib/x.py"), "holds no bin/python at its root"),
    ]
    for archive, says in cases:
        with pytest.raises(ValidationError, match=says):
            SubmitOptions(master="spark://h:7077", archive=archive)
    result = CliRunner().invoke(
        control_app,
        ["submit", "x.yaml", "--master", "spark://h:7077", "--archive", str(tmp_path / "notes.txt")],
    )
    assert result.exit_code == 2 and "notes.txt" in result.output
    assert SubmitOptions(master="spark://h:7077", archive=_env_archive(tmp_path / "env.tgz")).archive


def test_code_zip_holds_packages_named_by_stages(tmp_path):
    _, stages, _ = _spec(tmp_path)
    packages = stage_packages(stages)
    assert packages[-1] == "tests" and "pipelines" in packages
    first = package_code(tmp_path / "a.zip", packages)
    second = package_code(tmp_path / "b.zip", packages)
    assert first.read_bytes() == second.read_bytes()  # same code, same zip
    names = zipfile.ZipFile(first).namelist()
    assert "tests/jobs/stages_for_cluster.py" in names and "jobs/driver.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_command_ships_code_env_and_settings(tmp_path):
    spec, _, path = _spec(tmp_path)
    opts = SubmitOptions(
        master="k8s://https://k8s.example:6443",
        deploy_mode="cluster",
        executor_memory="8g",
        archive=_env_archive(tmp_path / "env.tar.gz"),
        conf={"spark.executor.memory": "16g", "spark.kubernetes.namespace": "curation"},
    )
    record = queued_record(spec, path, opts, "cmd-run")
    command = build_command(record, opts, tmp_path / "code.zip", opts.archive)
    assert command[command.index("--py-files") + 1] == str(tmp_path / "code.zip")
    assert command[command.index("--archives") + 1] == f"{tmp_path / 'env.tar.gz'}#environment"
    assert "spark.executor.memory=16g" in command and "spark.executor.memory=8g" not in command
    assert "spark.pyspark.python=./environment/bin/python" in command
    assert "spark.pyspark.driver.python=./environment/bin/python" in command
    assert "spark.kubernetes.driver.pod.name=refinery-cmd-run" in command
    assert command[-5:] == [command[-5], "--lake", record.lake, "--run-id", "cmd-run"]
    assert command[-5].endswith("jobs/driver.py")


def test_pack_venv_keeps_symlinks_and_is_reused(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    archive = pack_venv(venv, tmp_path / "cache")
    with tarfile.open(archive) as tar:
        python = tar.getmember("bin/python")
        assert python.issym()
        assert "pyvenv.cfg" in tar.getnames()
    mtime = archive.stat().st_mtime_ns
    assert pack_venv(venv, tmp_path / "cache") == archive and archive.stat().st_mtime_ns == mtime


def test_submission_that_fails_before_the_driver_is_finalized(tmp_path):
    script = "echo 'Exception in thread \"main\" java.io.IOException: Failed to connect to master'; exit 1"
    record, proc = _started(tmp_path, ["sh", "-c", script], "dead-on-arrival")
    proc.wait()
    final = refresh(record.lake, record.run_id)
    assert final.status == "failed" and "code 1 before the run started" in final.error
    assert "Failed to connect to master" in final.error_cause
    assert refresh(record.lake, record.run_id).status == "failed"  # persisted


def test_cancel_stops_the_submission_process_group(tmp_path):
    record, _ = _started(tmp_path, ["sh", "-c", "sleep 600 & sleep 600; wait"], "to-cancel")
    info = submit_info(record)
    assert submission_alive(info) is True
    final = cancel(record.lake, record.run_id, grace=5)
    assert final.status == "cancelled" and final.ended_at
    assert submission_alive(info) is False  # the whole group, children included
    assert (record.path.parent / CANCEL_FILE).exists()
    assert cancel(record.lake, record.run_id).status == "cancelled"  # idempotent


def test_follow_streams_until_done(tmp_path):
    log = tmp_path / "submit.log"
    finished = threading.Event()

    def writer() -> None:
        with log.open("a") as handle:
            for i in range(5):
                handle.write(f"line {i}\n")
                handle.flush()
        with log.open("a") as handle:
            handle.write("last, without newline")
        finished.set()

    thread = threading.Thread(target=writer)
    thread.start()
    lines = list(follow(log, finished.is_set, poll=0.05))
    thread.join()
    assert lines == [f"line {i}" for i in range(5)] + ["last, without newline"]


def test_status_of_unknown_run_names_the_lake(tmp_path):
    result = CliRunner().invoke(control_app, ["status", "nope", "--lake", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'nope'" in result.output
