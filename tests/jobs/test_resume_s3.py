"""A run on an S3 lake SIGKILLed mid-stage, then rerun: it resumes, and its tables equal a clean run's.

Issue 14's test (2), with the runner's small test job (tests/pipelines/stages_for_tests.py) so that
the kill lands in a known place: REFINERY_FAULT=before_commit:<table> SIGKILLs the CLI process after
the stage's data files are written under the table root and before their commit. Also the control
plane's view of the killed run on S3: `runs`, `show` and the `interrupted` status.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.framework.lake import Lake
from pipelines.framework.runrecord import RunRecord, list_runs
from pipelines.framework.storage import Location
from tests.cli_run import refinery
from tests.pipelines.table_hashes import table_hash

LOAD = "tests.pipelines.stages_for_tests:LoadJsonl"
MARK = "tests.pipelines.stages_for_tests:MarkShort"
SOURCE = Path("web/datajuicer_pretrain_source_samples/redpajama-cc-2023-06-refined.jsonl")
PINNED = {"REFINERY_CODE_VERSION": "pinned-for-the-s3-resume-test"}


def _spec(tmp_path: Path, shared_data: Path, lake: str, name: str) -> Path:
    spec = {
        "name": "runner-test",
        "lake": lake,
        "spark": {"master": "local[2]", "conf": {"spark.default.parallelism": 2}},
        "stages": [
            {"stage": LOAD, "params": {"path": str(shared_data / SOURCE)}},
            {"stage": MARK, "params": {"min_words": 400}},
        ],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _json(*args: str) -> object:
    ran = refinery(*args, "--json", env=PINNED)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return json.loads(ran.stdout)


@pytest.mark.slow
def test_killed_s3_run_resumes_to_the_tables_of_a_clean_run(tmp_path, shared_data, s3_bucket):
    lake = f"s3://{s3_bucket}/lake"
    spec = _spec(tmp_path, shared_data, lake, "killed")
    killed = refinery(
        "run", str(spec), "--quiet", env={**PINNED, "REFINERY_FAULT": "before_commit:runner-test/marked"}
    )
    assert killed.returncode == -9, killed.stderr[-2000:]

    (record,) = list_runs(lake)
    assert record.status == "running"  # the heartbeat is fresh: the driver may still be alive
    assert [s.status for s in record.stages] == ["succeeded", "running"]
    assert not Lake(lake).exists("runner-test/marked")
    listed = _json("runs", "--lake", lake)
    assert [r["run_id"] for r in listed] == [record.run_id]

    # Its driver is gone: once the heartbeat is stale the record reads `interrupted` everywhere.
    record.heartbeat_at = "2020-01-01T00:00:00+00:00"
    record.pid, record.host = 2**22 + 17, "elsewhere"
    record.save()
    shown = _json("show", record.run_id[:12], "--lake", lake)
    assert shown["status"] == "interrupted" and shown["stages"][1]["status"] == "failed"
    assert RunRecord.load(lake, record.run_id).status == "interrupted"

    resumed = refinery("run", str(spec), "--quiet", env=PINNED)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    latest = _json("show", "latest", "--lake", lake)
    assert [s["status"] for s in latest["stages"]] == ["skipped", "succeeded"]
    assert latest["stages"][1]["reconciled"] is True

    clean_lake = tmp_path / "clean"
    clean = refinery(
        "run", str(_spec(tmp_path, shared_data, str(clean_lake), "clean")), "--quiet", env=PINNED
    )
    assert clean.returncode == 0, clean.stderr[-3000:]
    for table in ("runner-test/documents", "runner-test/marked"):
        assert table_hash(Location.parse(lake) / table) == table_hash(clean_lake / table), table
