"""The demo job with its lake on S3 (a real S3 server on loopback): the same tables as on local disk,
every command on the S3 lake, and not one credential in anything the run or the commands leave.

Issue 14's tests (1) and (7). The job is jobs/examples/demo.yaml with `lake: s3://<bucket>/lake`
(and, as in test_demo, a local quality model and local[2]), compared table by table with the same
spec run on local disk in the same test (so a change to the demo changes both sides); the only
storage settings are the five standard AWS_* variables that the `s3_server` fixture exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.framework.storage import Location
from tests.cli_run import refinery
from tests.s3_server import ACCESS_KEY, SECRET_KEY
from tests.web.s3_pages import served_pages

REPO = Path(__file__).resolve().parents[2]
# Pinned as in test_demo: edits elsewhere in a shared tree must not change the resume keys mid-test.
PINNED_CODE = {"REFINERY_CODE_VERSION": "demo-s3-test"}
# Variables a user might hold that the run must not need: the five AWS_* ones are the whole setup.
NOT_NEEDED = ("REFINERY_LAKE", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")
SECRETS = (ACCESS_KEY, SECRET_KEY)


def _cli(*args: str, timeout: int = 1800):
    return refinery(*args, env=PINNED_CODE, unset=NOT_NEEDED, timeout=timeout)


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


def _bucket_leaks(s3_server, bucket: str) -> dict[str, list[str]]:
    """Every object in the bucket (records, commit logs, reports, manifests, data files) grepped."""
    client = s3_server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if leaks := _leaks(body):
                found[obj["Key"]] = leaks
    return found


def _demo_spec(tmp_path: Path, lake: str, model: Path) -> Path:
    demo = yaml.safe_load((REPO / "jobs/examples/demo.yaml").read_text())
    demo["lake"] = lake
    demo["spark"]["master"] = "local[2]"
    for stage in demo["stages"]:
        if stage["stage"] == "quality_classifier":
            stage["params"]["model"] = str(model)
    spec = tmp_path / f"demo-{Location.parse(lake).scheme}.yaml"
    spec.write_text(yaml.safe_dump(demo))
    return spec


def _commands(lake: str, tmp_path: Path) -> list:
    """Every inspecting command on the S3 lake, by option (and `runs` by REFINERY_LAKE); all must succeed."""
    commands = [
        ("runs", "--lake", lake),
        ("tables", "--lake", lake),
        ("tables", "demo/curated", "--lake", lake),
        ("quarantine", "--lake", lake),
        ("dropped", "demo/decided", "--lake", lake),
        ("shards", "verify", f"{lake}/shards/default", "--lake", lake),
        ("report", "latest", "--lake", lake, "-o", str(tmp_path / "report.html")),
        ("tables", "purge-raw", "--lake", lake, "--dataset", "demo"),
    ]
    outputs = []
    for command in commands:
        ran = _cli(*command)
        assert ran.returncode == 0, (command, ran.stdout[-2000:], ran.stderr[-2000:])
        outputs.append(ran)
    assert "demo/curated" in outputs[1].stdout and "demo/quarantine" in outputs[3].stdout
    by_env = refinery("runs", env={**PINNED_CODE, "REFINERY_LAKE": lake})
    assert by_env.returncode == 0 and "demo-" in by_env.stdout
    return [*outputs, by_env]


@pytest.mark.slow
def test_demo_on_s3_equals_local_disk_and_leaks_no_credential(tmp_path, s3_server, s3_bucket):
    from tests.pipelines.table_hashes import lake_hashes

    model = tmp_path / "models" / "quality.bin"
    data = REPO / "samples/quality/dclm/majority_minus_agreement.jsonl"
    trained = _cli("quality", "train", "--data", str(data), "-o", str(model))
    assert trained.returncode == 0, trained.stderr[-2000:]
    lake, local = f"s3://{s3_bucket}/lake", tmp_path / "local-lake"
    spec = _demo_spec(tmp_path, lake, model)
    outputs = [_cli("run", str(spec), "--quiet")]
    assert outputs[0].returncode == 0, outputs[0].stderr[-3000:]
    assert not (REPO / "s3:").exists()  # nothing went to a local folder named `s3:`

    # (1) Every table holds the rows of the same job run on local disk.
    on_disk = _cli("run", str(_demo_spec(tmp_path, str(local), model)), "--quiet")
    assert on_disk.returncode == 0, on_disk.stderr[-3000:]
    assert lake_hashes(Location.parse(lake) / "demo") == lake_hashes(local / "demo")

    record = json.loads(_cli("show", "latest", "--lake", lake, "--json").stdout)
    assert record["status"] == "succeeded" and record["lake"] == lake
    assert all(s["status"] == "succeeded" and s["reconciled"] is not False for s in record["stages"])
    outputs += _commands(lake, tmp_path)

    # Resume by content on S3: a rerun skips every stage.
    again = _cli("run", str(spec), "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads(_cli("show", "latest", "--lake", lake, "--json").stdout)
    assert {s["status"] for s in rerun["stages"]} == {"skipped"}
    outputs.append(again)

    # Errors name the URL and what to set, and hold no credential either.
    missing = _cli("runs", "--lake", f"s3://{s3_bucket}-absent/lake")
    wrong = refinery("runs", "--lake", lake, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, timeout=300)
    for failed in (missing, wrong):
        assert failed.returncode != 0 and "AWS_ENDPOINT_URL" in failed.stderr, failed.stderr[-2000:]
        outputs.append(failed)

    # (7) No credential in CLI output, errors, the HTML report, web pages, or any object in the bucket.
    for ran in outputs:
        assert not _leaks(ran.stdout + ran.stderr), ran.args
    html = (tmp_path / "report.html").read_text()
    assert "demo/curated" in html and not _leaks(html)
    pages = served_pages(lake, record["run_id"], "demo")
    assert pages and all(not _leaks(body) for body in pages.values())
    assert _bucket_leaks(s3_server, s3_bucket) == {}
