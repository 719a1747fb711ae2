"""Build a small real lake for the report and web tests (and the screenshot script).

One job through the real runner: the real `ingest` stage over real files from
../shared/data (web JSONL from RedPajama and the Pile, a multilingual dedup sample,
images with exact duplicates, the repository's damaged JSONL and
truncated WARC samples, which are quarantined) plus one planted hostile document; the test annotate stage
and a pattern redaction stage with the pii stage's output columns
(`tests.web.stages_for_web`); and the real `shards` stage with the sample tokenizer. Then the
run report is computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from jobs.report import write_run_report
from pipelines.framework.runner import Runner
from pipelines.framework.runrecord import RunRecord
from pipelines.framework.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
ANNOTATE = "tests.web.stages_for_web:Annotate"
REDACT = "tests.web.stages_for_web:Redact"
XSS_MARKERS = ("__xss",)
XSS_TEXT = (
    "Hostile document planted by the web tests. It must show as text and never run. "
    '<script>window.__xss=1</script> An image tag: <img src=x onerror="window.__xss=2"> '
    'A link: <a href="javascript:window.__xss=3">click me</a> and a style break </textarea></pre>'
    '<svg onload="window.__xss=4"></svg> The rest of this sentence is long enough to be kept by the '
    "quality rules because it has many ordinary English words in it, which is what the annotate stage "
    "looks for when it scores a document for quality and language. Contact: jane.doe@example.com."
)


def plant_hostile(folder: Path) -> Path:
    """A JSONL file with one hostile document whose URL is a javascript: URL."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hostile.jsonl"
    path.write_text(json.dumps({"text": XSS_TEXT, "url": "javascript:window.__xss=5"}) + "\n")
    return path


def job_spec(lake_dir: Path, shared_data: Path, planted: Path) -> dict[str, Any]:
    web = shared_data / "web"
    inputs = [
        {"name": "redpajama", "path": str(web / "datajuicer_pretrain_source_samples"), "format": "jsonl"},
        {
            "name": "multilingual",
            "path": str(shared_data / "dedup" / "datajuicer_demo_dedup"),
            "format": "jsonl",
        },
        {
            "name": "images",
            "path": str(shared_data / "images" / "datajuicer_test_images"),
            "format": "images",
        },
        {"name": "damaged", "path": str(REPO / "samples" / "bad")},
        {"name": "hostile", "path": str(planted)},
    ]
    return {
        "name": "webdemo",
        "lake": str(lake_dir),
        "spark": {"master": "local[2]"},
        "stages": [
            {"stage": "ingest", "params": {"inputs": inputs}},
            {"stage": ANNOTATE, "id": "annotate"},
            {"stage": REDACT, "id": "redact"},
            {
                "stage": "shards",
                "params": {
                    "input": "curated",
                    "tokenizer": str(REPO / "samples" / "tokenizer.json"),
                    "shard_tokens": 20000,
                },
            },
        ],
    }


def build_lake(spark: Any, lake_dir: Path, shared_data: Path) -> RunRecord:
    """Run the job and compute its report; returns the run record."""
    planted = plant_hostile(lake_dir.parent / "inputs")
    spec_path = lake_dir.parent / "webdemo.yaml"
    spec_path.write_text(yaml.safe_dump(job_spec(lake_dir, shared_data, planted)))
    spec, stages = load_spec(spec_path)
    record = Runner(spec, stages, spec_path=str(spec_path), spark=spark, progress=False).run()
    write_run_report(spark, lake_dir, record.run_id)
    return record
