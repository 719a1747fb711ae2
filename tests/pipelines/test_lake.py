"""The Delta lake layer: commits, pinned snapshots, time travel, invisible interrupted writes, conflicts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from pipelines.framework.delta_commit import STAGING, StagedFiles
from pipelines.framework.lake import TableMissingError
from tests.pipelines.racing_writers import assert_racing_writers_commit_or_conflict


def _jsonl_df(spark, shared_data):
    path = shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-c4-refined.jsonl"
    return spark.read.json(str(path)).select("text")


def test_commit_snapshot_and_time_travel(spark, lake, shared_data):
    df = _jsonl_df(spark, shared_data)
    n = df.count()
    first = lake.write(df, "d/docs", {"stage": "load", "run_id": "r1"})
    assert (first.version, first.num_records) == (0, n)
    second = lake.write(df.limit(3).withColumn("extra", df.text.substr(1, 5)), "d/docs", {"stage": "trim"})
    assert second.version == 1
    assert lake.read(spark, "d/docs").count() == 3
    assert lake.read(spark, "d/docs", version=0).count() == n
    assert "extra" in lake.read(spark, "d/docs").columns  # schema evolution on overwrite
    assert "extra" not in lake.read(spark, "d/docs", version=0).columns
    assert lake.num_records("d/docs", 0) == n
    assert lake.find_commit("d/docs", {"stage": "load"}) == 0
    assert lake.history("d/docs")[0]["meta"]["stage"] == "trim"


def test_other_readers_see_the_same_table(spark, lake, shared_data):
    import polars as pl
    from deltalake import DeltaTable

    df = _jsonl_df(spark, shared_data)
    lake.write(df, "d/docs", {"stage": "load"})
    n = df.count()
    path = str(lake.path("d/docs"))
    assert pl.read_delta(path).height == n
    assert DeltaTable(path).to_pyarrow_table().num_rows == n
    stats = DeltaTable(path).get_add_actions(flatten=True)
    assert sum(pa.table(stats).column("num_records").to_pylist()) == n


def test_duckdb_reads_a_pinned_snapshot(spark, lake, shared_data):
    """duckdb reads the Parquet files delta-rs lists for one version (its delta extension is a download)."""
    import duckdb
    from deltalake import DeltaTable

    df = _jsonl_df(spark, shared_data)
    lake.write(df, "d/docs", {"stage": "load"})
    lake.write(df.limit(3).withColumn("extra", df.text.substr(1, 5)), "d/docs", {"stage": "trim"})
    path = str(lake.path("d/docs"))
    for version in (0, 1):
        files = [uri.removeprefix("file://") for uri in DeltaTable(path, version=version).file_uris()]
        columns = lake.read(spark, "d/docs", version=version).columns
        theirs = duckdb.sql(f"select {', '.join(columns)} from read_parquet({files!r})").fetchall()
        ours = [tuple(row) for row in lake.read(spark, "d/docs", version=version).collect()]
        assert sorted(theirs) == sorted(ours) and len(ours) == (df.count() if version == 0 else 3)
    # Both versions' files are on disk: reading the folder, not the pinned list, would mix them.
    every_file = duckdb.sql(f"select count(*) from read_parquet('{path}/**/*.parquet')").fetchall()[0][0]
    assert every_file == df.count() + 3


def test_empty_dataframe_makes_a_readable_table(spark, lake):
    lake.write(spark.range(0).selectExpr("cast(id as string) as doc_id"), "d/empty", {})
    assert lake.read(spark, "d/empty").count() == 0
    assert lake.num_records("d/empty") == 0


def test_missing_table_and_escape_are_clear_errors(lake):
    with pytest.raises(TableMissingError, match="no table"):
        lake.delta("d/nothing")
    with pytest.raises(ValueError, match="escapes the lake"):
        lake.path("../outside")


def test_write_killed_before_commit_is_invisible_and_cleaned(lake, tmp_path):
    lake.write_arrow(pa.table({"x": [1, 2, 3]}), "d/t", {"stage": "first"})
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        from pipelines.framework.lake import Lake
        Lake({str(lake.root)!r}).write_arrow(pa.table({{"x": list(range(100))}}), "d/t", {{"stage": "second"}})
        """
    )
    env = {**os.environ, "REFINERY_FAULT": "before_commit:d/t"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -9  # SIGKILL at the injected fault point
    assert lake.version("d/t") == 0
    assert lake.num_records("d/t") == 3
    stray = lake.path("d/t").glob("*.parquet")
    assert len(stray) == 2  # the committed file and the written-but-uncommitted one
    removed = lake.clean_orphans("d/t")
    assert len(removed) == 1
    assert len(lake.path("d/t").glob("*.parquet")) == 1
    assert not (lake.path("d/t") / STAGING).list()


def test_concurrent_writers_never_corrupt_the_table(lake):
    assert_racing_writers_commit_or_conflict(lake, str(lake.root), writers=2, rounds=8)


def test_statistics_follow_columns_after_nested_ones(lake):
    """A list column has its own Parquet leaves: stats of later columns must not shift onto it."""
    from deltalake import DeltaTable

    data = pa.table({"tags": [["a", "b"], ["c"]], "flag": [True, False], "n": [3, 7]})
    lake.write_arrow(data, "d/nested", {})
    stats = pa.table(DeltaTable(str(lake.path("d/nested"))).get_add_actions(flatten=True)).to_pylist()[0]
    assert (stats["min.n"], stats["max.n"]) == (3, 7)
    assert (stats["min.flag"], stats["max.flag"]) == (False, True)
    assert lake.dataset("d/nested").to_table().num_rows == 2


def test_staged_files_commit_only_the_files_named(lake, shared_data):
    """Tasks write into a staging area; a failed attempt's leftover file must never be committed."""
    import pyarrow.parquet as pq

    path = shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-c4-refined.jsonl"
    texts = pa.table({"text": [line for line in path.read_text().splitlines() if line][:10]})
    txn, folder = lake.staging_area("d/staged")
    pq.write_table(texts.slice(0, 6), (folder / "part-00000-1.parquet").local_path())
    pq.write_table(texts.slice(6), (folder / "part-00001-1.parquet").local_path())
    pq.write_table(texts, (folder / "part-00000-0.parquet").local_path())  # the attempt that failed
    with pytest.raises(ValueError, match="cannot be committed"):
        lake.write(StagedFiles("d/staged", txn, ("part-00000-1.parquet",)), "d/other")
    commit = lake.write(
        StagedFiles("d/staged", txn, ("part-00000-1.parquet", "part-00001-1.parquet")), "d/staged"
    )
    assert (commit.num_records, commit.num_files) == (10, 2)
    assert lake.num_records("d/staged") == 10
    assert not (lake.path("d/staged") / STAGING / txn).exists()
    assert not (lake.path("d/staged") / STAGING).list()  # the failed attempt's file and the owner too
