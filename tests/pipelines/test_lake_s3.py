"""The lake on a real S3 server (moto on loopback): commits, time travel, races, orphans, credentials.

The same tests as test_lake.py where they apply, against `s3://bucket/lake`: every byte goes over
HTTP through pyarrow's S3 client (tables' data files, owner files) and delta-rs's object store
(commits with conditional puts).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.framework.delta_commit import STAGING
from pipelines.framework.lake import Lake, TableMissingError
from pipelines.framework.storage import Location
from tests.pipelines.racing_writers import assert_racing_writers_commit_or_conflict
from tests.s3_server import ACCESS_KEY, SECRET_KEY

REPO = Path(__file__).resolve().parents[2]


def bucket_objects(server, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, read with boto3 (not the code under test)."""
    client = server.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out


def assert_no_credentials(objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        assert ACCESS_KEY.encode() not in body and SECRET_KEY.encode() not in body, key


@pytest.fixture()
def s3_lake(s3_server, s3_bucket) -> Lake:
    return Lake(f"s3://{s3_bucket}/lake")


def _texts(shared_data: Path, n: int | None = None) -> list[str]:
    path = shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-c4-refined.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line][:n]


def test_write_read_time_travel_and_history_on_s3(
    spark, s3_lake, s3_server, s3_bucket, shared_data, tmp_path
):
    texts = _texts(shared_data)
    df = spark.createDataFrame([(t, len(t)) for t in texts], "text string, chars long").repartition(3)
    first = s3_lake.write(df, "d/docs", {"stage": "load", "run_id": "r1"})
    assert (first.version, first.num_records, first.num_files) == (0, len(texts), 3)
    second = s3_lake.write(df.limit(3).withColumn("extra", df.text.substr(1, 5)), "d/docs", {"stage": "trim"})
    appended = s3_lake.write(df.limit(2).withColumn("extra", df.text.substr(1, 2)), "d/docs", mode="append")
    assert (second.version, appended.version) == (1, 2)
    assert s3_lake.read(spark, "d/docs").count() == 5
    assert s3_lake.read(spark, "d/docs", version=0).count() == len(texts)
    assert sorted(r.text for r in s3_lake.read(spark, "d/docs", version=0).collect()) == sorted(texts)
    assert "extra" not in s3_lake.read(spark, "d/docs", version=0).columns
    assert (s3_lake.rows_added("d/docs", 1), s3_lake.rows_added("d/docs", 2)) == (3, 2)
    assert s3_lake.num_records("d/docs", 0) == len(texts)
    assert s3_lake.find_commit("d/docs", {"stage": "load"}) == 0
    assert s3_lake.history("d/docs")[1]["meta"]["stage"] == "trim"
    assert s3_lake.dataset("d/docs", 0).to_table().num_rows == len(texts)
    s3_lake.write_arrow(pa.table({"x": [1, 2]}), "other/t", {})
    assert s3_lake.tables() == ["d/docs", "other/t"]
    with pytest.raises(TableMissingError, match="no table"):
        s3_lake.delta("d/nothing")
    objects = bucket_objects(s3_server, s3_bucket)
    data_files = [k for k in objects if k.startswith("lake/d/docs/") and k.endswith(".parquet")]
    assert len(data_files) == 3 + 1 + 1  # every version's files, named per transaction, none moved
    # Committed: no owner file, nothing staged (pyarrow may leave an empty folder marker).
    assert not [k for k in objects if f"/{STAGING}/" in k and not k.endswith(f"/{STAGING}/")]
    assert_no_credentials(objects)
    assert not (REPO / "s3:").exists() and not (Path.cwd() / "s3:").exists()


def test_empty_dataframe_on_s3(spark, s3_lake):
    s3_lake.write(spark.range(0).selectExpr("cast(id as string) as doc_id"), "d/empty", {})
    assert s3_lake.read(spark, "d/empty").count() == 0
    assert s3_lake.num_records("d/empty") == 0


def test_racing_writers_on_s3_end_in_commits_or_clear_conflicts(s3_lake):
    """Conditional puts decide every race: each attempt is one whole commit or one TableConflictError."""
    assert_racing_writers_commit_or_conflict(s3_lake, s3_lake.root.url, writers=3, rounds=6)


def test_killed_writer_on_s3_is_invisible_and_cleaned(s3_lake):
    s3_lake.write_arrow(pa.table({"x": [1, 2, 3]}), "d/t", {"stage": "first"})
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        from pipelines.framework.lake import Lake
        Lake({s3_lake.root.url!r}).write_arrow(pa.table({{"x": list(range(100))}}), "d/t", {{"stage": "second"}})
        """
    )
    env = {**os.environ, "REFINERY_FAULT": "before_commit:d/t", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL at the injected fault point
    assert (s3_lake.version("d/t"), s3_lake.num_records("d/t")) == (0, 3)
    assert len(s3_lake.path("d/t").glob("*.parquet")) == 2  # committed + written-but-uncommitted
    assert len(s3_lake.path("d/t").glob(f"{STAGING}/*.owner.json")) == 1
    assert len(s3_lake.clean_orphans("d/t")) == 1
    assert len(s3_lake.path("d/t").glob("*.parquet")) == 1
    assert not (s3_lake.path("d/t") / STAGING).list()
    assert s3_lake.dataset("d/t").to_table().column("x").to_pylist() == [1, 2, 3]


def _foreign_txn(lake: Lake, table: str, txn: str, heartbeat: float) -> Location:
    """A transaction of a writer on another host: its owner file and one written data file."""
    owner = {"host": f"not-{socket.gethostname()}", "pid": 1, "started": heartbeat, "heartbeat": heartbeat}
    (lake.path(table) / STAGING / f"{txn}.owner.json").write_text(json.dumps({**owner, "moved": []}))
    data = lake.path(table) / f"part-00000-0-{txn}.parquet"
    data.write_bytes(b"PAR1 not yet committed")
    return data


def test_cleanup_never_touches_a_live_writer_on_another_host(s3_lake, monkeypatch):
    """A fresh heartbeat from another host means alive: its files stay until the grace period passes."""
    s3_lake.write_arrow(pa.table({"x": [1]}), "d/t", {})
    live = _foreign_txn(s3_lake, "d/t", "a" * 32, time.time())
    stale = _foreign_txn(s3_lake, "d/t", "b" * 32, time.time() - 3600)
    monkeypatch.setenv("REFINERY_ORPHAN_GRACE_S", "600")
    assert s3_lake.clean_orphans("d/t") == ["b" * 32]
    assert live.exists() and not stale.exists()
    assert (s3_lake.path("d/t") / STAGING / f"{'a' * 32}.owner.json").exists()
    assert s3_lake.num_records("d/t") == 1
    monkeypatch.setenv("REFINERY_ORPHAN_GRACE_S", "not-a-number")
    with pytest.raises(ValueError, match="REFINERY_ORPHAN_GRACE_S"):
        s3_lake.clean_orphans("d/t")
