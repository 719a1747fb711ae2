"""The lake on az:// against Azurite on loopback: the I/O layer, commits, races, orphans, ingest, a Spark run.

Every byte goes over HTTP, signed with the account key: data files and owner files through pyarrow's
AzureFileSystem, commits through delta-rs's object store (Azure's own put-if-absent decides races).
The only settings are the four variables the `azurite` fixture exports, as a user would set them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.framework.delta_commit import STAGING
from pipelines.framework.lake import Lake, TableMissingError
from pipelines.framework.runrecord import list_runs
from pipelines.framework.storage import Location, StorageError
from pipelines.framework.storage_cloud import azure_authority
from pipelines.framework.storage_settings import StorageSettings, scrub
from tests.azurite_server import ACCOUNT_KEY
from tests.cli_run import refinery
from tests.pipelines.racing_writers import assert_racing_writers_commit_or_conflict
from tests.pipelines.test_ingest_s3 import (  # noqa: F401 - crawl and local_run are fixtures
    TABLES,
    _documents,
    _ingest,
    _quarantine_by_file,
    _reconciles,
    crawl,
    local_run,
)
from tests.pipelines.test_runner_s3 import MARK, MARKED, _run, _source, _spec

# The I/O layer's own tests, run here against az:// (pytest collects them again with `root` below).
from tests.pipelines.test_storage import (  # noqa: F401
    test_streams_round_trip_and_locations_pickle,
    test_write_read_list_glob_move_delete,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def root(az_container) -> Location:
    return Location.parse(f"az://{az_container}/root")


@pytest.fixture()
def az_lake(az_container) -> Lake:
    return Lake(f"az://{az_container}/lake")


def assert_no_key(blobs: dict[str, bytes]) -> None:
    for name, body in blobs.items():
        assert ACCOUNT_KEY.encode() not in body, name


def _texts(shared_data: Path) -> list[str]:
    path = shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-c4-refined.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line]


def test_write_read_append_time_travel_on_az(spark, az_lake, azurite, az_container, shared_data):
    texts = _texts(shared_data)
    df = spark.createDataFrame([(t, len(t)) for t in texts], "text string, chars long").repartition(3)
    first = az_lake.write(df, "d/docs", {"stage": "load", "run_id": "r1"})
    assert (first.version, first.num_records, first.num_files) == (0, len(texts), 3)
    second = az_lake.write(df.limit(3), "d/docs", {"stage": "trim"})
    appended = az_lake.write(df.limit(2), "d/docs", mode="append")
    assert (second.version, appended.version) == (1, 2)
    assert az_lake.read(spark, "d/docs").count() == 5
    assert sorted(r.text for r in az_lake.read(spark, "d/docs", version=0).collect()) == sorted(texts)
    assert (az_lake.rows_added("d/docs", 1), az_lake.rows_added("d/docs", 2)) == (3, 2)
    assert az_lake.find_commit("d/docs", {"stage": "load"}) == 0
    assert az_lake.dataset("d/docs", 0).to_table().num_rows == len(texts)
    az_lake.write_arrow(pa.table({"x": [1, 2]}), "other/t", {})
    assert az_lake.tables() == ["d/docs", "other/t"]
    with pytest.raises(TableMissingError, match="no table"):
        az_lake.delta("d/nothing")
    blobs = azurite.blobs(az_container)
    data_files = [k for k in blobs if k.startswith(f"{az_container}/lake/d/docs/") and k.endswith(".parquet")]
    assert len(data_files) == 3 + 1 + 1  # every version's files, named per transaction
    assert any("/lake/d/docs/_delta_log/00000000000000000002.json" in k for k in blobs)
    assert not [k for k in blobs if f"/{STAGING}/" in k]  # committed: no owner file left
    assert_no_key(blobs)


def test_racing_writers_on_az_end_in_commits_or_clear_conflicts(az_lake):
    assert_racing_writers_commit_or_conflict(az_lake, az_lake.root.url, writers=3, rounds=5)


def test_killed_writer_on_az_is_invisible_and_cleaned(az_lake):
    az_lake.write_arrow(pa.table({"x": [1, 2, 3]}), "d/t", {"stage": "first"})
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        from pipelines.framework.lake import Lake
        Lake({az_lake.root.url!r}).write_arrow(pa.table({{"x": list(range(100))}}), "d/t", {{}})
        """
    )
    env = {**os.environ, "REFINERY_FAULT": "before_commit:d/t", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL at the injected fault point
    assert (az_lake.version("d/t"), az_lake.num_records("d/t")) == (0, 3)
    assert len(az_lake.path("d/t").glob("*.parquet")) == 2  # committed + written-but-uncommitted
    assert len(az_lake.clean_orphans("d/t")) == 1
    assert len(az_lake.path("d/t").glob("*.parquet")) == 1
    assert az_lake.dataset("d/t").to_table().column("x").to_pylist() == [1, 2, 3]


def test_gz_names_keep_their_bytes(root):
    """pyarrow compresses by file name unless told not to: a `.gz` written must read back as written."""
    data = b"\x1f\x8b already gzip bytes"
    (root / "x.warc.gz").write_bytes(data)
    assert (root / "x.warc.gz").read_bytes() == data


def test_missing_container_wrong_endpoint_and_plain_http_fail_naming_what_to_set(azurite, monkeypatch):
    with pytest.raises(StorageError, match=r"bucket 'no-such-container' of az://no-such-container/lake"):
        Location.parse("az://no-such-container/lake").require_reachable()
    monkeypatch.setenv("AZURE_ALLOW_HTTP", "false")
    with pytest.raises(StorageError, match="AZURE_ALLOW_HTTP=true"):
        _ = Location.parse("az://c/lake").fs
    monkeypatch.setenv("AZURE_ALLOW_HTTP", "true")
    monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:9/refineryaz")
    with pytest.raises(
        StorageError, match=r"cannot reach az://c/lake at http://127.0.0.1:9.*AZURE_STORAGE_ENDPOINT"
    ) as err:
        Location.parse("az://c/lake").require_reachable()
    assert ACCOUNT_KEY not in str(err.value)
    assert scrub(f"signed with {ACCOUNT_KEY}") == "signed with ***"
    monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:9/other")
    with pytest.raises(StorageError, match="names account 'other'"):
        _ = Location.parse("az://c/lake").fs


def test_runner_on_az_equals_local_disk_and_leaks_no_key(
    spark, tmp_path, shared_data, azurite, az_container, monkeypatch
):
    """A real Spark job (load JSONL, mark short documents) with its lake on az://, then the CLI on it."""
    monkeypatch.setenv("REFINERY_CODE_VERSION", "pinned-for-this-test")
    lake_url = f"az://{az_container}/lake"
    on_az = _run(_spec(tmp_path, _source(shared_data), lake_url), spark)
    on_disk = _run(_spec(tmp_path, _source(shared_data), str(tmp_path / "local"), "local"), spark)
    assert [s.status for s in on_az.stages] == ["succeeded", "succeeded"]
    assert on_az.stage(MARK).reconciled is True
    a = Lake(lake_url).read(spark, MARKED).orderBy("doc_id").collect()
    b = Lake(tmp_path / "local").read(spark, MARKED).orderBy("doc_id").collect()
    assert a == b and len(a) == on_disk.stage(MARK).rows_in > 0
    (record,) = list_runs(lake_url)
    assert record.status == "succeeded" and record.lake == lake_url
    outputs = [
        refinery(*args, timeout=300)
        for args in (("runs", "--lake", lake_url), ("tables", "--lake", lake_url))
    ]
    for ran in outputs:
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert ACCOUNT_KEY not in ran.stdout + ran.stderr
    assert MARKED in outputs[1].stdout
    blobs = azurite.blobs(az_container)
    assert any(k.endswith("/run.json") for k in blobs)
    assert_no_key(blobs)


def test_a_failed_run_on_az_shows_the_key_nowhere(tmp_path, azurite, az_container):
    """A run failing on a path that quotes the key: terminal, record and error file show `***`."""
    lake_url = f"az://{az_container}/lake"
    bad = refinery(
        "run", str(_spec(tmp_path, f"/nonexistent/{ACCOUNT_KEY}.jsonl", lake_url, "bad")), timeout=600
    )
    assert bad.returncode == 1
    assert "***" in bad.stderr and ACCOUNT_KEY not in bad.stdout + bad.stderr
    (failed,) = list_runs(lake_url)
    assert failed.status == "failed" and failed.error and "***" in failed.error
    blobs = azurite.blobs(az_container)
    assert any(k.endswith("/error.txt") for k in blobs)
    assert_no_key(blobs)


def test_azure_endpoints_path_style_and_virtual_host():
    """Azurite's path-style URL and Azure's own host name give pyarrow the authority it expects."""
    settings = StorageSettings(allow_http=True)
    assert azure_authority("http://127.0.0.1:10000/acct", "acct", settings) == ("http", "127.0.0.1:10000")
    assert azure_authority("https://acct.blob.core.windows.net", "acct", settings) == (
        "https",
        ".blob.core.windows.net",
    )
    with pytest.raises(StorageError, match="names no account"):
        azure_authority("https://blob.example.net", "acct", settings)
    with pytest.raises(ValueError) as err:  # a pasted key is refused without being echoed
        StorageSettings(azure_key_env=ACCOUNT_KEY)
    assert ACCOUNT_KEY not in str(err.value)


def test_warcs_from_az_into_an_az_lake_equal_local_disk_and_quarantine_with_urls(
    spark,
    azurite,
    az_container,
    crawl,  # noqa: F811 - a fixture imported above
    local_run,  # noqa: F811 - a fixture imported above
    tmp_path,
):
    """Ingest reads raw WARCs from az:// (a glob) and its tasks write the tables into an az:// lake."""
    fs = azurite.filesystem()
    for path in sorted(crawl.iterdir()):
        with fs.open_output_stream(f"{az_container}/crawl/{path.name}", compression=None) as out:
            out.write(path.read_bytes())
    url = f"az://{az_container}/crawl"
    metrics, rows = _ingest(spark, tmp_path, {"path": f"{url}/*.warc.gz"}, f"az://{az_container}/lake")
    _reconciles(metrics, rows)
    assert _documents(rows) == _documents(local_run[1]) and len(rows["documents"]) > 20
    by_file = _quarantine_by_file(rows)
    assert set(by_file) == {f"{url}/cut.warc.gz", f"{url}/garbage.warc.gz"}
    assert by_file[f"{url}/garbage.warc.gz"] == {"malformed_warc"}
    blobs = azurite.blobs(az_container)
    assert {f"{az_container}/lake/t/{t}/_delta_log/00000000000000000000.json" for t in TABLES} <= set(blobs)
    assert_no_key(blobs)
    assert ACCOUNT_KEY not in json.dumps([metrics, rows], default=str)
