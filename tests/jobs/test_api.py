"""The Python API: the README's snippet runs as printed, and a bad config fails like bad YAML does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from curation.decide import DecideConfig
from jobs.api import Job, Lake, Step
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.spec import SpecError
from pipelines.ingest.stage import IngestConfig

REPO = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    """The first Python block of the README's "Python API" section, exactly as a reader sees it."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Python API") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README's Python API section has no python block"
    return found.group(1)


def test_readme_snippet_is_about_ten_lines():
    lines = [line for line in readme_snippet().splitlines() if line.strip()]
    assert len(lines) <= 12


@pytest.mark.slow
def test_readme_snippet_runs(tmp_path):
    (tmp_path / "samples").symlink_to(REPO / "samples")
    ran = subprocess.run(
        [sys.executable, "-c", readme_snippet()],
        cwd=tmp_path,
        env={**os.environ, "REFINERY_SPARK_UI": "0"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert DROP_REASON in ran.stdout

    lake = Lake(tmp_path / "lake")
    run = lake.run("latest")
    assert run.status == "succeeded" and [s.id for s in run.stages] == ["ingest", "annotate", "decide"]
    documents = lake.table("notebook/documents")
    decided = lake.table("notebook/decided", version=lake.versions("notebook/decided")[-1])
    rows = documents.arrow().num_rows
    assert rows == 50  # the RedPajama and Pile samples
    counts = dict(decided.duckdb().aggregate(f"{DROP_REASON}, count(*) AS n").fetchall())
    assert sum(counts.values()) == rows == decided.polars(["doc_id"]).height == len(decided.pandas())
    stage = run.stage("decide")
    assert counts[None] == stage.kept and {k: v for k, v in counts.items() if k} == stage.dropped


def test_a_bad_config_fails_like_yaml_naming_the_field():
    with pytest.raises(SpecError, match=r"stages\[0\] \(decide\)\.params\.min_lang_score"):
        Job("bad", [Step("decide", {"min_lang_score": "high"})]).validate()
    with pytest.raises(SpecError, match=r"stages\[0\] \(decide\)\.params\.inputs: Extra inputs"):
        Job("bad", [Step("decide", IngestConfig())]).validate()


def test_a_job_is_the_spec_a_yaml_file_would_hold(tmp_path):
    job = Job(
        "mine",
        [
            Step("ingest", IngestConfig(inputs=[{"name": "a", "path": "x.jsonl"}])),
            Step("decide", DecideConfig()),
        ],
        lake=tmp_path / "lake",
        spark_master="local[2]",
    )
    spec = job.validate()
    assert spec.lake == str(tmp_path / "lake") and spec.spark.master == "local[2]"
    assert [s.stage for s in spec.stages] == ["ingest", "decide"]
    assert spec.stages[1].params == DecideConfig().model_dump(mode="json")
