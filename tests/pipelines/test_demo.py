"""The demo job end to end, as `make demo` runs it: every stage, reconciled counts, shards that verify."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=1800
    )


@pytest.mark.slow
def test_demo_job_runs_every_stage(tmp_path, shared_data):
    lake = tmp_path / "lake"
    model = lake / "models" / "quality.bin"
    trained = _cli(
        "quality",
        "train",
        "--data",
        str(shared_data / "quality/dclm/majority_minus_agreement.jsonl"),
        "-o",
        str(model),
    )
    assert trained.returncode == 0, trained.stderr[-2000:]

    demo = yaml.safe_load((REPO / "jobs/examples/demo.yaml").read_text())
    demo["lake"] = str(lake)
    demo["spark"]["master"] = "local[2]"
    for stage in demo["stages"]:
        if stage["stage"] == "quality_classifier":
            stage["params"]["model"] = str(model)
    spec = tmp_path / "demo.yaml"
    spec.write_text(yaml.safe_dump(demo))

    ran = _cli("run", str(spec), "--quiet")
    assert ran.returncode == 0, ran.stderr[-3000:]
    record = json.loads(_cli("show", "latest", "--lake", str(lake), "--json").stdout)
    assert record["status"] == "succeeded"
    assert [s["stage"] for s in record["stages"]] == [s["stage"] for s in demo["stages"]]
    for stage in record["stages"]:
        assert stage["status"] == "succeeded"
        assert stage["reconciled"] is not False, stage
    ingest = record["stages"][0]
    assert ingest["rows_out"]["quarantine"] >= 4
    # Every record read is a row, folded past a file's quarantine cap, or skipped (and shown).
    metrics = ingest["metrics"]
    assert ingest["skipped"] == metrics["skipped_records"] and ingest["skipped"]["warc_request"] > 0
    assert sum(metrics["quarantined"].values()) == ingest["rows_out"]["quarantine"]
    assert metrics["records_read"] == (
        sum(ingest["rows_out"].values())
        - metrics["quarantined"].get("quarantine_capped", 0)
        + sum(metrics["quarantine_folded"].values())
        + sum(ingest["skipped"].values())
    )
    final = record["stages"][-2]  # augment: every curated row is still there, dropped or kept
    assert final["kept"] > 0 and final["dropped"]

    shards = lake / "shards" / "default"
    verified = _cli("shards", "verify", str(shards), "--lake", str(lake))
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    manifest = json.loads((shards / "manifest.json").read_text())
    assert sum(s["documents"] for s in manifest["shards"]) == final["kept"]

    again = _cli("run", str(spec), "--quiet")
    assert again.returncode == 0
    rerun = json.loads(_cli("show", "latest", "--lake", str(lake), "--json").stdout)
    assert {s["status"] for s in rerun["stages"]} == {"skipped"}
