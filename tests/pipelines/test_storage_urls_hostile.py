"""Object-store URLs the two storage clients would read differently are refused when parsed.

pyarrow (run records, listings) takes a key literally; delta-rs (tables) parses the URL. A lake URL
with `..`, an empty segment or a query therefore put run records and tables under different keys,
or failed late in a pyarrow traceback; a query could carry a credential into every listing. `..`
and empty segments are refused by `split_url`, a query or fragment wherever a lake is used (an
input's key may hold them), each with one line that never shows the query.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml

from pipelines.framework.cli_options import output_file
from pipelines.framework.storage import Location, StorageError
from pipelines.framework.storage_settings import StorageSettings
from pipelines.framework.storage_urls import UrlError, is_s3_answer, lake_url_problem, split_url, store_error
from tests.cli_run import refinery

SECRET = "qs-SECRET-Zz81"


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/a/../lake",
        "s3://bucket/./lake",
        "s3://bucket/a/%2E%2e/lake",
        "s3://bucket//lake",
        "s3://bucket/x//lake",
        "gs://bucket/a/../lake",
        "az://container/a//lake",
    ],
)
def test_dot_dot_and_empty_segments_are_refused(url: str) -> None:
    with pytest.raises(StorageError, match="empty, `.` or `..` path segment") as info:
        split_url(url)
    assert str(info.value).startswith(url) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"s3://bucket/lake?secret_key={SECRET}",
        f"s3://bucket/lake?access_key=AKIA&secret_key={SECRET}/with/slashes",
        f"s3://bucket/q?region=eu-west-1&x={SECRET}",
        f"s3://bucket/lake#{SECRET}",
        f"gs://bucket/lake?token={SECRET}",
        "s3://bucket/lake?",
    ],
)
def test_a_lake_url_with_a_query_or_fragment_is_refused_without_echoing_it(url: str) -> None:
    """delta-rs drops the query, pyarrow keeps it in the key: refused wherever a lake's tables are reached."""
    lake = Location.parse(url)  # an input's key may hold `?` and `#`: the URL itself parses
    for action in (lake.delta_storage_options, lake.require_writable):
        with pytest.raises(UrlError, match=r"\?\*\*\*|#\*\*\*") as info:
            action()
        assert SECRET not in str(info.value) and "cannot carry a query" in str(info.value)


def test_credentials_before_the_bucket_and_in_a_query_are_both_masked() -> None:
    with pytest.raises(UrlError, match=r"s3://\*\*\*@bucket/lake\?\*\*\*") as info:
        split_url(f"s3://user:{SECRET}@bucket/lake?x={SECRET}")
    assert SECRET not in str(info.value)


def test_what_stays_accepted() -> None:
    """A trailing slash is dropped; an input's glob wildcard or odd key is no query; a web URL keeps one."""
    assert split_url("s3://bucket/lake/") == ("s3", "bucket/lake")
    assert split_url("s3a://bucket/crawl/part-0?.warc.gz") == ("s3", "bucket/crawl/part-0?.warc.gz")
    assert split_url("s3://b/odd?key#1.warc") == ("s3", "b/odd?key#1.warc")
    assert split_url("https://example.org/a?b=c") == ("https", "example.org/a?b=c")
    assert lake_url_problem("s3://bucket/lake") is None and lake_url_problem("/tmp/a?b") is None


def test_cli_refuses_them_in_one_line_exit_2(tmp_path) -> None:
    """A URL wrong as written is a usage error (2), not a listing of the wrong prefix (0)."""
    calls = [("runs", "s3://bucket/a/../lake"), ("runs", "s3://bucket//lake")]
    calls += [(command, f"s3://bucket/lake?secret_key={SECRET}") for command in ("runs", "tables", "doctor")]
    calls += [("tables purge-raw --dataset demo", f"s3://bucket/lake?secret_key={SECRET}")]
    for command, url in calls:
        shown = refinery(*command.split(), "--lake", url, cwd=tmp_path, env={"COLUMNS": "500"}, timeout=300)
        output = shown.stdout + shown.stderr
        assert SECRET not in output and "Traceback" not in output, output
        assert shown.returncode == 2 and shown.stderr.startswith("error: s3://bucket/"), output
        assert shown.stderr.count("\n") == 1, output


@pytest.mark.parametrize("lake", ["s3://bucket/a/../lake", f"s3://bucket/lake?secret_key={SECRET}"])
def test_run_refuses_such_a_lake_before_recording_anything(tmp_path, lake: str) -> None:
    """It used to run, listing one prefix and committing under another, then fail in the last commit."""
    spec = tmp_path / "spec.yaml"
    load = {"stage": "tests.pipelines.stages_for_tests:LoadJsonl", "params": {"path": str(spec)}}
    spec.write_text(yaml.safe_dump({"name": "url-test", "lake": lake, "stages": [load]}))
    shown = refinery("run", str(spec), "--quiet", cwd=tmp_path, env={"COLUMNS": "500"}, timeout=300)
    output = shown.stdout + shown.stderr
    assert shown.returncode == 2 and "Traceback" not in output and SECRET not in output, output
    assert "`..` path segment" in output or "cannot carry a query" in output, output


def test_a_spec_whose_lake_carries_a_query_fails_with_the_spec_naming_lake(tmp_path) -> None:
    from pipelines.framework.spec import SpecError, load_spec

    spec = tmp_path / "spec.yaml"
    load = {"stage": "tests.pipelines.stages_for_tests:LoadJsonl", "params": {"path": str(spec)}}
    spec.write_text(yaml.safe_dump({"name": "url-test", "lake": f"s3://b/l?key={SECRET}", "stages": [load]}))
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert "lake" in str(caught.value) and "cannot carry a query" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_key_pyarrow_refuses_is_a_storage_error_naming_the_url(s3_server, s3_bucket) -> None:
    """Locations made without parsing (a listing, a join) still never end in an ArrowInvalid traceback."""
    bad = Location(f"s3://{s3_bucket}//lake")
    for action in (bad.list, bad.is_dir, bad.children, lambda: (bad / "x").read_bytes()):
        with pytest.raises(StorageError, match=f"s3://{s3_bucket}//lake"):
            action()


def test_refused_credentials_are_named_without_values() -> None:
    settings = StorageSettings()
    text = "AWS Error ACCESS_DENIED during HeadBucket operation: No response body."
    said = store_error(text, settings, "s3")
    assert ".." not in said and "the credentials were refused" in said
    assert "AWS_ACCESS_KEY_ID" in said and "AWS_SECRET_ACCESS_KEY" in said
    assert "credentials were refused" not in store_error("NETWORK_CONNECTION curlCode: 7", settings, "s3")


def test_an_s3_answer_is_told_from_a_web_server() -> None:
    assert is_s3_answer(["x-amz-request-id"], b"")
    assert is_s3_answer(["Server"], b'<?xml version="1.0"?><Error><Code>NoSuchBucket</Code></Error>')
    assert not is_s3_answer(["Server", "Content-Type"], b"<html><h1>Error response</h1></html>")


def test_an_output_option_that_takes_local_paths_refuses_a_url(tmp_path) -> None:
    """A `Path` option read `s3://bucket/t.json` as `s3:/bucket/t.json`: a local folder `s3:`, exit 0."""
    with pytest.raises(
        typer.BadParameter, match=r"s3://bucket/t.json: this command writes a local file only"
    ):
        output_file(Path("s3://bucket/t.json"), "tokenizer.json", "--output")
    assert output_file(tmp_path / "s3x" / "t.json", "tokenizer.json", "--output").parent.is_dir()
    args = ("tokenizer", "train", "--table", "d/t", "--output", "s3://bucket/t.json", "--lake", str(tmp_path))
    shown = refinery(*args, cwd=tmp_path, env={"COLUMNS": "500"}, timeout=300)
    assert shown.returncode == 2 and "writes a local file only" in shown.stderr, shown.stderr
    assert not (tmp_path / "s3:").exists()
