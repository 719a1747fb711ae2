"""The `refinery` CLI end to end on the bundled sample: run, runs, show, tables, quarantine, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.cli_run import refinery as run_cli

REPO = Path(__file__).resolve().parents[2]


def refinery(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env={"COLUMNS": "80"})


def test_cli_runs_the_ingest_part_of_the_demo(tmp_path):
    demo = yaml.safe_load((REPO / "jobs" / "examples" / "demo.yaml").read_text())
    demo["lake"] = str(tmp_path / "lake")
    demo["spark"] = {"master": "local[2]"}
    demo["stages"] = [s for s in demo["stages"] if s["stage"] == "ingest"]
    spec = tmp_path / "demo-ingest.yaml"
    spec.write_text(yaml.safe_dump(demo))

    ran = refinery("run", str(spec), "--quiet")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "run record:" in ran.stdout

    listed = refinery("runs", "--lake", str(tmp_path / "lake"), "--json")
    runs = json.loads(listed.stdout)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    run_id = runs[0]["run_id"]

    shown = json.loads(refinery("show", run_id[:-3], "--lake", str(tmp_path / "lake"), "--json").stdout)
    ingest = shown["stages"][0]
    assert ingest["reconciled"] is True
    assert ingest["rows_out"]["documents"] > 0 and ingest["rows_out"]["images"] == 6
    assert ingest["rows_out"]["quarantine"] >= 3  # the damaged JSONL lines and the truncated WARC

    funnel = refinery("show", "latest", "--lake", str(tmp_path / "lake")).stdout
    assert run_id in funnel and "…" not in funnel
    assert funnel.index("ingest") < funnel.index("details") < funnel.index("quarantine ")

    tables = refinery("tables", "--lake", str(tmp_path / "lake"))
    assert "demo/documents" in tables.stdout and "demo/quarantine" in tables.stdout
    one = refinery("tables", "demo/documents", "--lake", str(tmp_path / "lake"))
    assert "doc_id" in one.stdout and "ingest" in one.stdout

    quarantine = refinery("quarantine", "--lake", str(tmp_path / "lake"))
    assert quarantine.returncode == 0 and "damaged" in quarantine.stdout


def test_cli_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"name": "x", "stages": [{"stage": "ingest", "params": {"inputs": [{"name": "a"}]}}]})
    )
    result = refinery("run", str(bad))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "stages[0] (ingest).params.inputs[0]:" in message
    assert "give exactly one of `path` and `paths_file`" in message  # an input names its files

    missing = refinery("show", "no-such-run", "--lake", str(tmp_path))
    assert missing.returncode == 2 and "no run 'no-such-run'" in missing.stderr

    nothing = refinery("tables", "x/y", "--lake", str(tmp_path))
    assert nothing.returncode == 2 and "no table 'x/y'" in nothing.stderr
