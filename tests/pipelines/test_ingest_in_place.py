"""Ingest's tables are committed where its tasks wrote them (PlacedFiles): on object storage no staging
copy exists to move from, every data file the log adds is one a task wrote under the table root, named
with the commit's transaction, and nothing is left in the staging prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.framework.lake import Lake
from pipelines.framework.stage import StageContext
from pipelines.framework.table_io import PlacedFiles, txn_of
from pipelines.ingest.stage import Ingest, IngestConfig

WARCS = ("web/cc_warc_resiliparse/warcfile.warc.gz", "web/dolma_cc_samples/warc/sample-0000.warc.gz")
TABLES = ("documents", "images", "quarantine")


def test_an_s3_ingest_commits_the_tasks_files_in_place(
    spark, s3_server, s3_bucket, shared_data: Path, tmp_path
):
    client = s3_server.client()
    for name in WARCS:
        client.put_object(
            Bucket=s3_bucket, Key=f"crawl/{Path(name).name}", Body=(shared_data / name).read_bytes()
        )
    lake = Lake(f"s3://{s3_bucket}/lake")
    spec = {"name": "crawl", "path": f"s3://{s3_bucket}/crawl/*.warc.gz", "format": "warc"}
    stage = Ingest(IngestConfig(inputs=[{**spec, "options": {"extractor": "resiliparse"}}], partitions=2))
    ctx = StageContext(spark=spark, lake=lake, dataset="t", run_id="r1", work_dir=tmp_path / "work")
    result = stage.run(ctx)
    assert all(isinstance(placed, PlacedFiles) for placed in result.tables.values())
    for name, placed in result.tables.items():
        lake.write(placed, ctx.table(name))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="lake/")["Contents"]]
    staged = [
        k for k in keys if "/_staging/" in k and not k.endswith("/_staging/")
    ]  # pyarrow's folder markers
    assert not staged, "a committed ingest leaves nothing staged"
    for table in TABLES:
        log = client.get_object(Bucket=s3_bucket, Key=f"lake/t/{table}/_delta_log/{0:020d}.json")[
            "Body"
        ].read()
        adds = [action["add"] for action in map(json.loads, log.decode().splitlines()) if "add" in action]
        txn = lake.history(ctx.table(table))[0]["meta"]["txn"]
        data = sorted(k.rsplit("/", 1)[1] for k in keys if k.startswith(f"lake/t/{table}/part-"))
        assert sorted(a["path"] for a in adds) == data and data
        assert {txn_of(name) for name in data} == {txn}
        assert all(json.loads(a["stats"])["numRecords"] >= 0 and a["size"] > 0 for a in adds)
    documents = lake.dataset(ctx.table("documents")).to_table()
    assert documents.num_rows == result.metrics["rows"]["crawl"]["documents"] > 20


def test_placed_files_commit_only_to_their_own_table(tmp_path):
    lake = Lake(tmp_path / "lake")
    placed = PlacedFiles("t/documents", "0" * 32, pa.schema([("x", pa.int64())]), ())
    with pytest.raises(ValueError, match="cannot be committed to 't/images'"):
        lake.write(placed, "t/images")
