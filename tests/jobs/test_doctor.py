"""`refinery doctor` on this machine: everything a run needs passes; a broken setup fails with a fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli_run import refinery

QUALITY_DATA = "samples/quality/dclm/majority_minus_agreement.jsonl"  # what `make demo` trains on

REPO = Path(__file__).resolve().parents[2]


def doctor(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return refinery("doctor", *args, cwd=cwd, env={"COLUMNS": "80", **(env or {})}, timeout=600)


def test_doctor_passes_where_the_tests_run(tmp_path):
    ran = doctor("--lake", str(tmp_path / "lake"), "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr[-2000:]
    # Spark starts without announcing its default log4j profile or the missing native Hadoop library
    assert "log4j profile" not in ran.stderr and "NativeCodeLoader" not in ran.stderr, ran.stderr
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


def _spec(tmp_path: Path, annotate: dict, decide: dict) -> Path:
    spec = {
        "name": "segmented",
        "stages": [
            {"stage": "annotate", "params": {"input": "documents", "output": "annotated", **annotate}},
            {"stage": "decide", "params": {"input": "annotated", "output": "decided", **decide}},
        ],
    }
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def test_a_kept_language_without_its_segmenter_data_fails_and_names_it(tmp_path):
    # Tibetan: botok is installed, but its dialect pack is a download to ~/Documents/pybo; a fresh HOME
    # has none, as a bare machine has none. Annotate's start-time check (every language's package) passes;
    # decide keeps bo, whose documents will be segmented, so the job would fail in a worker.
    spec = _spec(tmp_path, {}, {"presets": ["gopher"], "languages": ["en", "bo"]})
    lake = str(tmp_path / "lake")
    ran = doctor("--no-spark", "--lake", lake, "--spec", str(spec), "--json", env={"HOME": str(tmp_path)})
    assert ran.returncode == 1, ran.stdout + ran.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(ran.stdout)}
    job = checks["job segmenters"]
    assert job["status"] == "fail" and job["required"]
    assert "stage decide" in job["detail"] and "bo: botok's dialect pack is not at" in job["detail"]
    assert str(tmp_path / "Documents" / "pybo" / "dialect_packs" / "general") in job["detail"]
    assert "stage annotate" not in job["detail"]  # its packages are all installed here
    assert "pip command" in job["fix"]


def test_listed_signal_languages_are_checked_as_annotate_checks_them_at_start(tmp_path):
    spec = _spec(
        tmp_path, {"signal_languages": ["en", "zh", "bo"]}, {"presets": [], "languages": ["en", "zh"]}
    )
    ran = doctor(
        "--no-spark", "--lake", str(tmp_path / "lake"), "--spec", str(spec), env={"HOME": str(tmp_path)}
    )
    assert ran.returncode == 1
    out = ran.stdout.replace("\n", " ")
    assert "fail job segmenters: stage annotate: word segmenters missing: bo:" in out
    assert "stage decide" not in out  # zh's jieba ships its dictionary
    assert "not ready: job segmenters" in out


def test_the_demo_job_has_its_segmenters(tmp_path):
    """The demo's spec as `make demo` runs it: its quality model trained first (a clean checkout has none,
    and the spec only loads when the model it names exists), here into tmp_path."""
    model = tmp_path / "quality.bin"
    trained = refinery("quality", "train", "--data", str(REPO / QUALITY_DATA), "-o", str(model), timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    text = (
        (REPO / "jobs/examples/demo.yaml")
        .read_text()
        .replace("model: lake/models/quality.bin", f"model: {model}")
    )
    assert str(model) in text, "the demo spec no longer names lake/models/quality.bin: update this test"
    demo = tmp_path / "demo.yaml"
    demo.write_text(text)
    ran = doctor("--no-spark", "--lake", str(tmp_path / "lake"), "--spec", str(demo), "--json")
    checks = {c["name"]: c for c in json.loads(ran.stdout)}
    assert checks["job segmenters"]["status"] == "ok", checks["job segmenters"]
    assert checks["word segmenters"]["status"] == "ok", checks["word segmenters"]


def test_a_broken_spec_fails_the_segmenter_check_with_the_field(tmp_path):
    spec = _spec(tmp_path, {"signal_languages": "bo"}, {})
    ran = doctor("--no-spark", "--lake", str(tmp_path / "lake"), "--spec", str(spec), "--json")
    assert ran.returncode == 1
    job = {c["name"]: c for c in json.loads(ran.stdout)}["job segmenters"]
    assert job["status"] == "fail" and "signal_languages" in job["detail"]


def _tokenizer_check(tmp_path: Path, *args: str) -> dict:
    ran = doctor("--no-spark", "--lake", str(tmp_path / "lake"), "--json", *args, cwd=tmp_path)
    return {c["name"]: c for c in json.loads(ran.stdout)}["tokenizer"]


def test_the_tokenizer_is_found_as_the_shards_stage_finds_it_from_any_folder(tmp_path):
    """Run from a user's own folder (the quickstart's), doctor looked for samples/tokenizer.json there and
    said "not ready" for a job that writes no shards at all."""
    bundled = _tokenizer_check(tmp_path)
    assert bundled["status"] == "ok" and str(REPO / "samples" / "tokenizer.json") in bundled["detail"]
    no_shards = _spec(tmp_path, {}, {"presets": ["gopher"], "languages": ["en"]})
    info = _tokenizer_check(tmp_path, "--spec", str(no_shards))
    assert info["status"] == "info" and "writes no shards" in info["detail"] and not info["required"]
    shards = tmp_path / "shards.yaml"
    shards.write_text(
        json.dumps({"name": "s", "stages": [{"stage": "shards", "params": {"tokenizer": "tok.json"}}]})
    )
    missing = _tokenizer_check(tmp_path, "--spec", str(shards))
    assert missing["status"] == "fail" and str(REPO / "tok.json") in missing["detail"]
    (tmp_path / "tok.json").write_bytes((REPO / "samples" / "tokenizer.json").read_bytes())
    found = _tokenizer_check(tmp_path, "--spec", str(shards))
    assert found["status"] == "ok" and str(tmp_path / "tok.json") in found["detail"]
