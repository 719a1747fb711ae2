"""`refinery submit` against a real Spark standalone master and workers on 127.0.0.1.

Covers: a submitted job's tables equal a local run's (with a packed venv shipped by
--archives), cancel of a long job, two jobs committing the same tables at once, and a
worker killed in the middle of a job followed by a rerun.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobs.control_cli import app as control_app
from jobs.registry import submission_alive, submit_info
from jobs.submit import submit
from pipelines.framework.lake import Lake
from pipelines.framework.runner import run_spec
from tests.jobs.conftest import assert_same_tables, table_rows, wait_for

pytestmark = pytest.mark.cluster

# The test stages derive doc ids from input splits; both sides use the same parallelism.
SAME_SPLITS = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


@pytest.fixture(scope="module")
def reference(spark, job_spec, tmp_path_factory) -> Path:
    """The same job run locally (the `spark` fixture, local[2]); its lake is the expected output."""
    lake = tmp_path_factory.mktemp("reference") / "local"
    record = run_spec(job_spec(lake), progress=False, spark=spark)
    assert record.status == "succeeded"
    return lake


def _tiny_venv(folder: Path) -> Path:
    """A venv of this interpreter whose site-packages points at ours: small to pack, complete to run."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    import site

    (next(folder.glob("lib/python*/site-packages")) / "refinery-deps.pth").write_text(
        site.getsitepackages()[0] + "\n"
    )
    return folder


def test_submit_matches_local_run(cluster, options, job_spec, reference, tmp_path):
    lake = tmp_path / "cluster"
    opts = options(conf=SAME_SPLITS, venv=_tiny_venv(tmp_path / "venv"), env_cache=tmp_path / "envs")
    record = submit(job_spec(lake), opts, run_id="submitted")
    assert record.status == "succeeded", (record.error, record.error_cause)
    assert record.master == cluster.url and record.app_id.startswith("app-")
    assert [s.status for s in record.stages] == ["succeeded"] * len(record.stages)
    assert_same_tables(reference, lake, record.dataset)
    # Executors ran the shipped environment's python, unpacked from the archive.
    assert list(cluster.state_dir.glob(f"worker-*/{record.app_id}/*/environment/bin/python"))
    info = submit_info(record)
    assert "spark.pyspark.python=./environment/bin/python" in info.command
    cli = CliRunner()
    status = cli.invoke(control_app, ["status", "submitted", "--lake", str(lake)])
    assert status.exit_code == 0 and "[succeeded]" in status.output and record.app_id in status.output
    logs = cli.invoke(control_app, ["logs", "submitted", "--lake", str(lake), "--follow"])
    assert logs.exit_code == 0 and "refinery driver: run submitted succeeded" in logs.output
    listing = cli.invoke(control_app, ["cluster", "status", "--dir", str(cluster.state_dir)])
    assert listing.exit_code == 0 and record.app_id in listing.output and "ALIVE" in listing.output


def test_cancel_long_job(cluster, options, job_spec, tmp_path):
    lake = tmp_path / "cancel"
    submit(job_spec(lake, sleep=3600), options(), run_id="long", wait=False)
    running = wait_for(lake, "long", lambda r: r.status == "running" and r.stage("sleep").status == "running")
    assert running.status == "running", (running.error, running.error_cause)
    result = CliRunner().invoke(control_app, ["cancel", "long", "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    record = wait_for(lake, "long", lambda r: False)
    assert record.status == "cancelled" and record.ended_at
    assert submission_alive(submit_info(record)) is False
    apps = {a["id"]: a for a in cluster.master_state()["activeapps"]}
    assert record.app_id not in apps
    assert not Lake(lake).exists(f"{record.dataset}/slept")


def test_two_jobs_commit_the_same_tables(cluster, options, job_spec, reference, tmp_path):
    lake = tmp_path / "shared"
    spec = job_spec(lake, sleep=5)  # a slow last stage, so that both drivers are surely running at once
    for run_id in ("first", "second"):
        submit(spec, options(conf=SAME_SPLITS), run_id=run_id, wait=False)
    records = [wait_for(lake, run_id, lambda r: False) for run_id in ("first", "second")]
    # They overlapped: each started before the other ended (else this tests nothing concurrent).
    assert max(r.started_at for r in records) < min(r.ended_at for r in records), [
        (r.started_at, r.ended_at) for r in records
    ]
    for record in records:
        assert record.status == "succeeded" or (
            record.status == "failed" and "another writer committed" in (record.error or "")
        ), (record.status, record.error, record.error_cause)
    assert "succeeded" in {r.status for r in records}
    assert_same_tables(reference, lake, records[0].dataset)
    for table in Lake(lake).tables():
        _assert_consistent(Lake(lake), table)


def _assert_consistent(lake: Lake, table: str) -> None:
    """Every version readable with the row count its log claims; no data file outside the log."""
    latest = lake.version(table)
    referenced: set[str] = set()
    for version in range(latest + 1):
        data = lake.dataset(table, version).to_table()
        assert data.num_rows == lake.num_records(table, version)
        referenced |= {Path(uri).name for uri in lake.delta(table, version).file_uris()}
    on_disk = {p.name for p in lake.path(table).glob("*.parquet")}
    assert on_disk <= referenced, on_disk - referenced


def test_worker_killed_mid_job(cluster, options, job_spec, reference, tmp_path):
    lake, markers = tmp_path / "killed", tmp_path / "markers"
    markers.mkdir()
    spec = job_spec(lake, sleep=20, markers=markers)
    submit(spec, options(conf=SAME_SPLITS), run_id="victim", wait=False)
    record = wait_for(
        lake,
        "victim",
        lambda r: (
            r.status == "running" and r.stage("sleep").status == "running" and _attempts(markers, "started")
        ),
    )
    host = wait_for_executor(cluster, record.app_id)
    cluster.kill_worker(host)
    cluster.add_worker()  # capacity comes back, as a restarted machine would
    record = wait_for(lake, "victim", lambda r: False)
    print(f"after losing a worker mid-job the run ended {record.status}: {record.error}")  # shown by -rA
    # The kill hit the stage: a task of it had started and never finished.
    assert _attempts(markers, "started") - _attempts(markers, "finished")
    if record.status != "succeeded":  # Spark did not recover this one: it must say why, and a rerun must
        assert record.status in ("failed", "interrupted") and record.error
        record = submit(spec, options(conf=SAME_SPLITS), run_id="rerun")
    assert record.status == "succeeded", (record.error, record.error_cause)
    assert_same_tables(reference, lake, record.dataset)
    # The table being written when the worker died holds exactly the rows it copies in an uninterrupted run.
    sleep = record.stage("sleep").config
    copied = table_rows(reference, f"{record.dataset}/{sleep['input']}")
    assert copied and table_rows(lake, f"{record.dataset}/{sleep['output']}") == copied


def _attempts(markers: Path, event: str) -> set[str]:
    """Task attempts of the slow stage that reached `event` (started or finished)."""
    return {p.name.removeprefix(f"{event}-") for p in markers.glob(f"{event}-*")}


def wait_for_executor(cluster, app_id: str, timeout: float = 600):
    """The worker daemon running an executor of `app_id` (read from each worker's JSON page)."""
    import time

    from jobs.cluster import HOST, http_json

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for daemon in cluster.worker_daemons:
            try:
                page = http_json(f"http://{HOST}:{daemon.web_port}/json/")
            except OSError:
                continue
            if any(e.get("appid") == app_id for e in page.get("executors", [])):
                return daemon
        time.sleep(1.0)
    raise AssertionError(f"no worker ran an executor of {app_id}")
