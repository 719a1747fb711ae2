"""`refinery doctor` on this machine: everything a run needs passes; a broken setup fails with a fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli_run import refinery

REPO = Path(__file__).resolve().parents[2]


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return refinery("doctor", *args, env={"COLUMNS": "80", **(env or {})}, timeout=600)


def test_doctor_passes_where_the_tests_run(tmp_path):
    ran = doctor("--lake", str(tmp_path / "lake"), "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(ran.stdout)}
    assert set(checks) == {
        "java",
        "spark",
        "lid.176 model",
        "spaCy pipeline",
        "tokenizer",
        "word segmenters",
        "lake",
        "free disk",
        "GPU",
    }
    for name in ("java", "spark", "lid.176 model", "spaCy pipeline", "tokenizer", "lake"):
        assert checks[name]["status"] == "ok", checks[name]
    assert not (tmp_path / "lake").exists()  # checking a lake does not create it


def test_unwritable_lake_fails_and_says_what_to_do(tmp_path):
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder")
    ran = doctor("--no-spark", "--lake", str(occupied / "lake"))
    assert ran.returncode == 1
    assert "fail lake:" in ran.stdout and "is not a folder" in ran.stdout
    assert "pass --lake to a writable folder" in ran.stdout
    assert "not ready: lake" in ran.stdout


def test_missing_java_fails_java_and_spark(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "JAVA_HOME"}
    ran = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "doctor", "--lake", str(tmp_path / "lake"), "--json"],
        cwd=REPO,
        env={**env, "PATH": str(empty_bin)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 1, ran.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(ran.stdout)}
    assert checks["java"]["status"] == "fail" and "openjdk-17" in checks["java"]["fix"]
    assert checks["spark"]["status"] == "fail" and "needs a working Java" in checks["spark"]["detail"]
    assert checks["lid.176 model"]["status"] == "ok"  # the other checks still run


def test_old_java_is_named(tmp_path):
    fake_home = tmp_path / "jdk"
    (fake_home / "bin").mkdir(parents=True)
    java = fake_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    java.chmod(0o755)
    ran = doctor("--no-spark", "--lake", str(tmp_path / "lake"), env={"JAVA_HOME": str(fake_home)})
    assert ran.returncode == 1
    assert "Java 11; Spark 4 needs 17 or 21" in ran.stdout.replace("\n", " ")
