"""Real documents for the curation tests: DCLM-labelled Common Crawl pages and RedPajama/Pile samples."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def dclm(shared_data: Path) -> list[dict]:
    """218 Common Crawl documents with human quality labels (1 = high quality)."""
    return _jsonl(shared_data / "quality" / "dclm" / "majority_minus_agreement.jsonl")


@pytest.fixture(scope="session")
def web_texts(dclm, shared_data: Path) -> list[str]:
    """Real web/pretraining texts: the DCLM pages plus data-juicer's RedPajama and Pile samples."""
    texts = [row["text"] for row in dclm]
    for path in sorted((shared_data / "web" / "datajuicer_pretrain_source_samples").rglob("*.jsonl")):
        texts += [row["text"] for row in _jsonl(path) if row.get("text")]
    return texts


@pytest.fixture()
def documents(stage_ctx, web_texts):
    """A `documents` table of the real texts, written through the lake like ingest would."""
    table = pa.table(
        {
            "doc_id": [f"d{i}" for i in range(len(web_texts))],
            "uri": [f"https://site{i % 7}.example.org/page/{i}" for i in range(len(web_texts))],
            "text": web_texts,
        }
    )
    stage_ctx.lake.write_arrow(table, stage_ctx.table("documents"))
    return table
