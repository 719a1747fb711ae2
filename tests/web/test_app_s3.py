"""The web app serving a lake from S3 (a real S3 server on loopback) answers as it does from disk.

The web tests' real lake (tests/web/lakebuild.py) is copied object by object into a bucket; Delta
logs name their data files relative to the table root, so the copy is the same lake. Every page
must render from the bucket, and every JSON endpoint over tables (documents, one document, images,
quarantine, dataset, compare) must return what it returns from the local folder: the app reads the
S3 snapshot through pyarrow, not DuckDB's own file reader, and the answers must not change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.framework.storage import Location
from tests.web.s3_pages import fetch, served_pages, serving


def upload(folder: Path, dest: Location) -> int:
    """Copy every file under `folder` to `dest` through the I/O layer; returns the count."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    for path in files:
        (dest / path.relative_to(folder).as_posix()).write_bytes(path.read_bytes())
    return len(files)


@pytest.fixture()
def s3_web_lake(web_lake, s3_bucket) -> str:
    lake = Location.parse(f"s3://{s3_bucket}/lake")
    assert upload(web_lake[0], lake) > 0
    return lake.url


def _api_paths(client, dataset: str) -> list[str]:
    curated = f"{dataset}/curated"
    doc_id = client.get("/api/docs", params={"table": curated}).json()
    first = next(row["doc_id"] for pane in doc_id["panes"].values() for row in pane["rows"])
    return [
        "/api/tables",
        f"/api/dataset?table={curated}",
        f"/api/docs?table={curated}",
        f"/api/docs?table={curated}&page=1",
        f"/api/doc?table={curated}&id={first}",
        f"/api/compare?table={curated}&a=0&b=0",
        f"/api/images?table={dataset}/images",
        f"/api/quarantine?table={dataset}/quarantine",
    ]


def test_every_page_and_table_answer_from_s3_as_from_disk(web_lake, client, s3_web_lake):
    _, record = web_lake
    pages = served_pages(s3_web_lake, record.run_id, record.dataset)
    assert record.run_id in pages["/"] and f"{record.dataset}/curated" in pages["/tables"]
    with serving(s3_web_lake) as base:
        for path in [*_api_paths(client, record.dataset), "/api/runs"]:
            local = client.get(path)
            assert local.status_code == 200, (path, local.text[:500])
            assert json.loads(fetch(base + path)) == local.json(), path
