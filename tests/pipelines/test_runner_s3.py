"""The runner with its lake on a real S3 server: resume after SIGKILL, fail fast, no credential anywhere.

Issue 14's tests (2) for the runner's own stages, (7) for run records and commit metadata, and (8):
a wrong endpoint or a missing bucket stops `refinery run` at once with a message that names the URL
and what to set.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.framework.delta_commit import STAGING
from pipelines.framework.lake import Lake
from pipelines.framework.runner import Runner
from pipelines.framework.runrecord import RunRecord, list_runs
from pipelines.framework.spec import load_spec
from tests.cli_run import refinery
from tests.pipelines.test_lake_s3 import assert_no_credentials, bucket_objects
from tests.s3_server import ACCESS_KEY, SECRET_KEY

LOAD = "tests.pipelines.stages_for_tests:LoadJsonl"
MARK = "tests.pipelines.stages_for_tests:MarkShort"
MARKED = "runner-test/marked"


def _spec(tmp_path: Path, source: Path | str, lake: str, name: str = "spec") -> Path:
    spec = {
        "name": "runner-test",
        "lake": lake,
        "spark": {"master": "local[2]"},
        "stages": [
            {"stage": LOAD, "params": {"path": str(source)}},
            {"stage": MARK, "params": {"min_words": 400}},
        ],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _source(shared_data: Path) -> Path:
    return shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-cc-2023-06-refined.jsonl"


def _run(path: Path, spark) -> RunRecord:
    spec, stages = load_spec(path)
    return Runner(spec, stages, spec_path=str(path), spark=spark, progress=False).run()


def test_killed_stage_on_s3_resumes_to_the_tables_of_a_clean_run(
    spark, tmp_path, shared_data, s3_server, s3_bucket, monkeypatch
):
    monkeypatch.setenv("REFINERY_CODE_VERSION", "pinned-for-this-test")
    killed_url, clean_url = f"s3://{s3_bucket}/killed", f"s3://{s3_bucket}/clean"
    spec_path = _spec(tmp_path, _source(shared_data), killed_url)
    proc = refinery(
        "run", str(spec_path), "--quiet", env={"REFINERY_FAULT": f"before_commit:{MARKED}"}, timeout=600
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    (killed,) = list_runs(killed_url)
    assert killed.status == "running" and killed.lake == killed_url  # heartbeat not yet stale
    killed_lake = Lake(killed_url)
    assert not killed_lake.exists(MARKED)
    assert len(killed_lake.path(MARKED).glob("*.parquet")) > 0  # the killed writer's files are there

    resumed = _run(spec_path, spark)
    assert [s.status for s in resumed.stages] == ["skipped", "succeeded"]
    assert resumed.stage(MARK).reconciled is True
    clean = _run(_spec(tmp_path, _source(shared_data), clean_url, "clean"), spark)
    a = killed_lake.read(spark, MARKED).orderBy("doc_id").collect()
    b = Lake(clean_url).read(spark, MARKED).orderBy("doc_id").collect()
    assert a == b and len(a) == clean.stage(MARK).rows_in
    committed = {u.rsplit("/", 1)[-1] for u in killed_lake.delta(MARKED).file_uris()}
    assert {e.location.name for e in killed_lake.path(MARKED).glob("*.parquet")} == committed
    assert not killed_lake.path(MARKED).glob(f"{STAGING}/*.owner.json")
    assert_no_credentials(bucket_objects(s3_server, s3_bucket))


def test_credentials_stay_out_of_records_errors_and_output(tmp_path, shared_data, s3_server, s3_bucket):
    """A run that fails on a path quoting the secret: record, error file and terminal show `***`."""
    lake_url = f"s3://{s3_bucket}/lake"
    ok = refinery("run", str(_spec(tmp_path, _source(shared_data), lake_url)), "--quiet", timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = refinery(
        "run", str(_spec(tmp_path, f"/nonexistent/{SECRET_KEY}.jsonl", lake_url, "bad")), timeout=600
    )
    assert bad.returncode == 1
    assert "***" in bad.stderr and "FileNotFoundError" in bad.stderr
    for output in (ok.stdout, ok.stderr, bad.stdout, bad.stderr):
        assert SECRET_KEY not in output and ACCESS_KEY not in output
    failed = next(r for r in list_runs(lake_url) if r.status == "failed")
    assert failed.error and "***" in failed.error
    objects = bucket_objects(s3_server, s3_bucket)
    assert any(k.endswith("/error.txt") for k in objects) and any(k.endswith("/run.json") for k in objects)
    assert_no_credentials(objects)


def test_wrong_endpoint_or_missing_bucket_fails_fast_naming_what_to_set(tmp_path, shared_data, s3_server):
    spec_path = _spec(tmp_path, _source(shared_data), "s3://no-such-bucket-here/lake")
    missing = refinery("run", str(spec_path), timeout=120)
    assert missing.returncode == 1
    message = " ".join(missing.stderr.split())
    assert "s3://no-such-bucket-here/lake" in message and "does not exist" in message
    assert "AWS_ENDPOINT_URL" in message

    closed_port = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    wrong = refinery("run", str(spec_path), env={"AWS_ENDPOINT_URL": closed_port}, timeout=180)
    assert wrong.returncode == 1
    message = " ".join(wrong.stderr.split())
    assert "cannot reach s3://no-such-bucket-here/lake at http://127.0.0.1:9" in message
    assert "Set AWS_ENDPOINT_URL" in message
    for output in (missing.stderr, wrong.stderr):
        assert SECRET_KEY not in output and ACCESS_KEY not in output
    assert not (Path.cwd() / "s3:").exists()
