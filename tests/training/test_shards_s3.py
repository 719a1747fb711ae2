# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""The shards stage on a lake on object storage (issue 14): the real stage reads the table from the S3
server on loopback and writes the shard set back to it; `refinery shards verify/info/show` work on the URL;
a build that fails leaves no manifest, so no reader ever sees a half-written set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.framework.storage import Location
from tests.training.test_shards_fixtures import (  # noqa: F401
    built_shards,
    shards_config,
    small_tokenizer,
    write_corpus,
)
from training.loader.stream import TokenStream
from training.shards.cli import shards_app
from training.shards.config import ShardsConfig, output_folder
from training.shards.format import MANIFEST_NAME, Manifest
from training.shards.stage import Shards

runner = CliRunner()


@pytest.fixture()
def s3_ctx(s3_bucket, spark, shared_data: Path, tmp_path: Path):
    """A stage context on `s3://<bucket>/lake` holding the corpus as `test/curated` (two data files).

    The Spark session may have started before the server exported its variables (another test made it):
    the stage itself must hand them to its tasks."""
    from pipelines.framework.lake import Lake
    from pipelines.framework.stage import StageContext

    lake = Lake(f"s3://{s3_bucket}/lake")
    write_corpus(lake, "test/curated", shared_data)
    return StageContext(spark=spark, lake=lake, dataset="test", run_id="test-s3", work_dir=tmp_path / "work")


def test_stage_writes_the_local_shards_to_s3_and_the_cli_checks_them_on_the_url(
    s3_ctx, built_shards, small_tokenizer
):
    stage = Shards(ShardsConfig(**shards_config(small_tokenizer)))
    result = stage.run(s3_ctx)
    url = f"{s3_ctx.lake.root}/shards/default"
    assert result.metrics["output_dir"] == url
    remote, local = Manifest.load(url), Manifest.load(built_shards.folder)
    # The same documents with the same tokens in each split as the local build (shard boundaries follow the
    # data files' order, which their random names decide, so per-shard bytes differ between two lakes).
    assert {k: (v.tokens, v.documents) for k, v in remote.splits.items()} == {
        k: (v.tokens, v.documents) for k, v in local.splits.items()
    }
    assert remote.source_lake == str(s3_ctx.lake.root)
    assert stage.is_complete(s3_ctx, {})  # a rerun is skipped: every listed file is there

    verified = runner.invoke(shards_app, ["verify", url, "--sample", "20", "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert report["ok"] and report["sampled"] == 20 and report["documents"] == remote.total_documents
    info = json.loads(runner.invoke(shards_app, ["info", url, "--json"]).output)
    assert info["tokens"] == remote.total_tokens and info["source_table"] == "test/curated"
    doc_id = Location.parse(url) / (remote.shards[0].name + ".docs.parquet")
    first = _first_doc_id(doc_id)
    shown = runner.invoke(shards_app, ["show", url, "--doc", first, "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["shard"] == remote.shards[0].name


def test_a_failed_rebuild_on_s3_leaves_no_set_to_read(s3_ctx, small_tokenizer):
    """The manifest is removed before a rebuild and written only after every task: a reader in between, or
    after a failure, finds no set rather than a mix of old and new shards."""
    Shards(ShardsConfig(**shards_config(small_tokenizer))).run(s3_ctx)
    folder = Location.parse(f"{s3_ctx.lake.root}/shards/default")
    assert (folder / MANIFEST_NAME).exists()
    broken = Shards(ShardsConfig(**shards_config(small_tokenizer, text_column="quality_score", check_docs=0)))
    with pytest.raises(Exception):  # noqa: B017 - Spark wraps the task's error in its own exception type
        broken.run(s3_ctx)
    assert not (folder / MANIFEST_NAME).exists()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        TokenStream([str(folder)], 32, 4)
    result = runner.invoke(shards_app, ["verify", str(folder)])
    assert result.exit_code == 1 and "manifest.json" in result.output


def test_tokenizer_trains_from_a_table_on_an_s3_lake(s3_bucket, shared_data: Path, tmp_path: Path):
    from pipelines.framework.lake import Lake
    from training.shards.cli import tokenizer_app

    lake = f"s3://{s3_bucket}/lake"
    write_corpus(Lake(lake), "test/curated", shared_data)
    out = tmp_path / "tokenizer.json"
    args = ["train", "--table", "test/curated", "--lake", lake, "-o", str(out), "--vocab-size", "300"]
    result = runner.invoke(tokenizer_app, args)
    assert result.exit_code == 0, result.output
    assert out.is_file() and "test/curated v1" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("output_dir", "expected"),
    [
        (None, "s3://bkt/lake/shards/web"),
        ("sets/web", "s3://bkt/lake/sets/web"),
        ("s3://other/shards", "s3://other/shards"),
        ("/data/shards", "/data/shards"),
    ],
)
def test_output_folder_resolves_under_an_s3_lake(output_dir, expected):
    config = ShardsConfig(tokenizer="t.json", name="web", output_dir=output_dir)
    assert output_folder(Location.parse("s3://bkt/lake"), config).url == expected


def test_a_missing_bucket_is_named_with_what_to_set(s3_server):
    result = runner.invoke(shards_app, ["info", "s3://refinery-no-such-bucket/lake/shards/web"])
    output = " ".join(result.output.split())  # the terminal wraps long lines
    assert result.exit_code == 1
    assert "bucket 'refinery-no-such-bucket' of s3://refinery-no-such-bucket/lake/shards/web" in output
    assert "does not exist" in output and "AWS_ENDPOINT_URL" in output


def _first_doc_id(docs: Location) -> str:
    import pyarrow.parquet as pq

    return pq.read_table(docs.fs_path, columns=["doc_id"], filesystem=docs.fs).column("doc_id")[0].as_py()
