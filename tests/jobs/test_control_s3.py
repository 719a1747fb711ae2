"""The control plane on an S3 lake (a real S3 server on loopback), without Spark: run listing and
`interrupted` detection, run-id prefixes, cancel, the finalizing of a dead submission, purge-raw,
doctor, and the web app's stored reports.

Tables are committed with `Lake.write_arrow` (the same commit path as a stage's) and records are
saved by `RunRecord.save`, both through the I/O layer into the bucket. Commands run in this
process (typer's CliRunner) except where delta-rs holds the interpreter while it talks to the
server, which would starve the server's thread here (see the purge test).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from jobs.cli import app
from jobs.doctor import run_checks
from jobs.registry import (
    SUBMISSIONS_ENV,
    SubmitInfo,
    cancel,
    refresh,
    resolve_run_id,
    run_dir,
    submit_folder,
)
from jobs.report import REPORT_NAME, REPORT_VERSION, load_run_report, report_path
from jobs.web.data import LakeView
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.lake import Lake
from pipelines.framework.runrecord import RunRecord
from pipelines.framework.storage import Location
from tests.cli_run import refinery

cli = CliRunner()
STALE = "2020-01-01T00:00:00+00:00"


@pytest.fixture()
def s3_lake(s3_bucket) -> Location:
    return Location.parse(f"s3://{s3_bucket}/lake")


def _record(lake: Location, run_id: str, **fields: object) -> RunRecord:
    record = RunRecord(run_id=run_id, job="j", dataset="ds", lake=lake.url, **fields)
    record.save()
    return record


def _commit(lake: Lake, table: str, data: dict[str, list], inputs: dict[str, int] | None = None) -> int:
    return lake.write_arrow(pa.table(data), table, {"inputs": json.dumps(inputs or {})}).version


def _invoke(*args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_runs_show_and_interrupted_detection(s3_lake, monkeypatch):
    _record(s3_lake, "job-20261203-000001-aaaaaa", status="succeeded", created_at="2026-12-03T00:00:01")
    _record(
        s3_lake,
        "job-20261203-000002-bbbbbb",
        status="running",
        heartbeat_at=STALE,
        pid=2**22 + 17,
        host="elsewhere",
        created_at="2026-12-03T00:00:02",
    )
    listed = json.loads(_invoke("runs", "--lake", s3_lake.url, "--json"))
    assert [(r["run_id"][-6:], r["status"]) for r in listed] == [
        ("bbbbbb", "interrupted"),
        ("aaaaaa", "succeeded"),
    ]
    monkeypatch.setenv("REFINERY_LAKE", s3_lake.url)
    shown = json.loads(_invoke("show", "latest", "--json"))
    assert shown["run_id"].endswith("bbbbbb") and shown["status"] == "interrupted"
    assert resolve_run_id(s3_lake.url, "job-20261203-000001") == "job-20261203-000001-aaaaaa"
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_run_id(s3_lake, "job-")
    missing = cli.invoke(app, ["show", "nope", "--lake", s3_lake.url])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output


def test_cancel_and_finalize_on_s3(s3_lake, tmp_path, monkeypatch):
    monkeypatch.setenv(SUBMISSIONS_ENV, str(tmp_path / "submissions"))
    queued = _record(s3_lake, "queued-run", status="queued")
    assert cancel(s3_lake.url, "queued-run").status == "cancelled"
    assert (run_dir(queued) / "cancel.requested").is_file() and RunRecord.load(
        s3_lake, "queued-run"
    ).cancel_requested

    # A submitted run whose spark-submit process group is gone (pid of no process on this host):
    # status settles it from the local submission folder's log and exit code.
    dead = _record(s3_lake, "dead-run", status="running", started_at="2026-12-03T00:00:00")
    folder = submit_folder(dead)
    assert folder == tmp_path / "submissions" / "dead-run"
    folder.mkdir(parents=True)
    (folder / "submit.log").write_text("Exception in thread main: java.lang.OutOfMemoryError\n")
    (folder / "exit_code").write_text("1\n")
    SubmitInfo(
        command=["spark-submit"], master="spark://127.0.0.1:7077", deploy_mode="client", pid=2**22 + 19
    ).save(run_dir(dead))
    settled = refresh(s3_lake, "dead-run")
    assert settled.status == "interrupted" and "code 1" in settled.error
    assert "OutOfMemoryError" in settled.error_cause
    assert RunRecord.load(s3_lake, "dead-run").status == "interrupted"  # saved back to the bucket


def test_tables_quarantine_dropped_and_purge_on_s3(s3_lake):
    lake = Lake(s3_lake)
    _commit(lake, "ds/documents", {"doc_id": ["a", "b"], "text": ["old one", "old two"]})
    v1 = _commit(lake, "ds/documents", {"doc_id": ["c", "d"], "text": ["kept text", "short"]})
    _commit(
        lake,
        "ds/curated",
        {"doc_id": ["c", "d"], "text": ["kept text", "short"], DROP_REASON: [None, "too_short"]},
        {"ds/documents": v1},
    )
    _commit(
        lake,
        "ds/quarantine",
        {"source": ["s3://b/x.jsonl"], "locator": ["line 3"], "reason": ["bad_json"], "excerpt": ["{oops"]},
    )
    tables = json.loads(_invoke("tables", "--lake", s3_lake.url, "--json"))
    assert {t["table"]: (t["version"], t["rows"]) for t in tables} == {
        "ds/curated": (0, 2),
        "ds/documents": (1, 2),
        "ds/quarantine": (0, 1),
    }
    assert "too_short" in _invoke("dropped", "ds/curated", "--lake", s3_lake.url)
    quarantined = json.loads(_invoke("quarantine", "--lake", s3_lake.url, "--json"))
    assert quarantined[0]["by_reason"] == {"bad_json": 1}

    # purge-raw reads commit history, which delta-rs lists without releasing the interpreter: run it
    # in its own process, as a user does, so that this process's S3 server thread can answer.
    args = ["tables", "purge-raw", "--lake", s3_lake.url, "--dataset", "ds", "--curated", "curated"]
    dry = refinery(*args)
    assert dry.returncode == 0 and '"files": 1' in dry.stdout, dry.stderr[-2000:]
    assert lake.dataset("ds/documents", 0).to_table().num_rows == 2  # nothing deleted without --yes
    done = refinery(*args, "--yes")
    assert done.returncode == 0 and '"deleted": true' in done.stdout, done.stderr[-2000:]
    assert lake.dataset("ds/documents", v1).to_table().num_rows == 2  # the curated lineage stays
    with pytest.raises(Exception, match="(?i)not found|no such|not exist"):
        lake.dataset("ds/documents", 0).to_table()


def test_stored_report_is_read_from_s3(s3_lake):
    Lake(s3_lake).write_arrow(pa.table({"doc_id": ["a"], "text": ["x"]}), "ds/documents")
    _record(s3_lake, "reported", status="succeeded")
    stored = {
        "report_version": REPORT_VERSION,
        "run_id": "reported",
        "tables": {"ds/documents@0": {"rows": 1}},
    }
    report_path(s3_lake.url, "reported").write_text(json.dumps(stored))
    assert report_path(s3_lake, "reported") == s3_lake / "_runs" / "reported" / REPORT_NAME
    assert load_run_report(s3_lake, "reported") == stored
    view = LakeView(s3_lake.url)
    assert view.report("reported") == stored
    assert view.table_report("ds/documents", 0) == ({"rows": 1}, "reported", [])  # nothing damaged skipped
    assert [r.run_id for r in view.runs()] == ["reported"]


def test_doctor_checks_the_bucket(s3_lake, s3_bucket, tmp_path):
    checks = {c.name: c for c in run_checks(s3_lake.url, tmp_path / "no-tokenizer.json", spark=False)}
    assert checks["lake"].status == "ok", checks["lake"].detail
    assert not list((s3_lake / "_runs").list())  # the probe object was removed
    absent = {
        c.name: c for c in run_checks(f"s3://{s3_bucket}-absent/lake", tmp_path / "t.json", spark=False)
    }
    assert absent["lake"].status == "fail" and f"{s3_bucket}-absent" in absent["lake"].detail
