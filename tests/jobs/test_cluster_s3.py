"""`refinery submit` to a real Spark standalone master and workers with the lake on S3 (issue 14, test 4).

The job is the cluster tests' (tests/jobs/conftest.py `job_spec`: the runner's test stages, or the
spec in REFINERY_CLUSTER_SPEC, e.g. the demo); only its lake is an S3 URL. Executors write the
table files through the I/O layer and the driver commits them: no Hadoop S3 connector is on any
classpath. The submission's log and exit status stay in a local folder (jobs/registry.py); the
record, submit.json and the cancel marker live in the bucket, and none of them holds a credential.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobs.control_cli import app as control_app
from jobs.registry import SUBMISSIONS_ENV, log_file, submit_folder, submit_info
from jobs.submit import submit
from pipelines.framework.runner import run_spec
from pipelines.framework.storage import Location
from tests.jobs.conftest import assert_same_tables, wait_for
from tests.s3_server import ACCESS_KEY, SECRET_KEY

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SAME_SPLITS = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


@pytest.fixture(scope="module")
def reference(spark, job_spec, tmp_path_factory) -> Path:
    """The same job run locally on local disk: the expected tables."""
    lake = tmp_path_factory.mktemp("reference-s3") / "local"
    record = run_spec(job_spec(lake), progress=False, spark=spark)
    assert record.status == "succeeded"
    return lake


def test_submit_with_the_lake_on_s3_matches_a_local_run(
    cluster, options, job_spec, reference, s3_bucket, tmp_path, monkeypatch
):
    monkeypatch.setenv(SUBMISSIONS_ENV, str(tmp_path / "submissions"))
    lake = Location.parse(f"s3://{s3_bucket}/lake")
    record = submit(job_spec(lake), options(conf=SAME_SPLITS), run_id="on-s3")
    assert record.status == "succeeded", (record.error, record.error_cause)
    assert record.lake == lake.url and record.app_id.startswith("app-")
    assert_same_tables(reference, lake, record.dataset)

    # The log and exit status are local; the record and submit.json are in the bucket.
    assert submit_folder(record) == tmp_path / "submissions" / "on-s3"
    assert log_file(record).is_file() and (submit_folder(record) / "exit_code").read_text().strip() == "0"
    assert (lake / "_runs" / "on-s3" / "submit.json").is_file()
    assert submit_info(record).master == cluster.url

    cli = CliRunner()
    status = cli.invoke(control_app, ["status", "on-s", "--lake", lake.url])
    assert status.exit_code == 0 and "[succeeded]" in status.output, status.output
    logs = cli.invoke(control_app, ["logs", "on-s3", "--lake", lake.url])
    assert logs.exit_code == 0 and "refinery driver: run on-s3 succeeded" in logs.output
    written = [
        (lake / "_runs" / "on-s3" / "run.json").read_text(),
        (lake / "_runs" / "on-s3" / "submit.json").read_text(),
        log_file(record).read_text(errors="replace"),
        status.output,
        logs.output,
    ]
    assert not [s for s in (ACCESS_KEY, SECRET_KEY) for text in written if s in text]


def test_cancel_a_submitted_run_on_s3(cluster, options, job_spec, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv(SUBMISSIONS_ENV, str(tmp_path / "submissions"))
    lake = Location.parse(f"s3://{s3_bucket}/lake")
    submit(job_spec(lake, sleep=3600), options(), run_id="long", wait=False)
    running = wait_for(lake, "long", lambda r: r.status == "running" and r.stage("sleep").status == "running")
    assert running.status == "running", (running.error, running.error_cause)
    result = CliRunner().invoke(control_app, ["cancel", "long", "--lake", lake.url])
    assert result.exit_code == 0, result.output
    record = wait_for(lake, "long", lambda r: False)
    assert record.status == "cancelled" and record.ended_at
    assert (lake / "_runs" / "long" / "cancel.requested").is_file()
