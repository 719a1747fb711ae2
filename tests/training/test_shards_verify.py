# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""verify / info / show, on a copy of the shared shard set (corrupted on purpose where the test says so)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from tests.training.test_shards_fixtures import built_shards, small_tokenizer  # noqa: F401
from training.shards.cli import shards_app
from training.shards.format import Manifest, shard_paths
from training.shards.inspect import info, show
from training.shards.reader import ShardReader
from training.shards.verify import verify

runner = CliRunner()


@pytest.fixture()
def copy(built_shards, tmp_path):
    target = tmp_path / "shards"
    shutil.copytree(built_shards.folder, target)
    return target


def test_clean_set_verifies_with_a_sample_compared_to_the_source(copy):
    report = verify(copy, sample=20)
    assert report.ok, [str(p) for p in report.problems]
    assert report.sampled == 20 and report.documents == Manifest.load(copy).total_documents


def test_flipped_byte_is_reported_with_shard_and_offset(copy):
    manifest = Manifest.load(copy)
    entry = max(manifest.shards, key=lambda e: e.documents)
    reader = ShardReader.from_manifest(copy, manifest, entry.name)
    start, _ = reader.span(2)
    token_index = start + 3
    byte_offset = token_index * 2
    del reader
    path = shard_paths(copy, entry.name)[0]
    data = bytearray(path.read_bytes())
    data[byte_offset] ^= 0x01  # low byte of a little-endian uint16 token: still a valid id
    path.write_bytes(bytes(data))

    report = verify(copy, sample=0)
    first = report.problems[0]
    assert first.shard == entry.name and first.byte_offset == byte_offset and first.kind == "content"
    assert any(p.kind == "sha256" and p.shard == entry.name for p in report.problems)

    result = runner.invoke(shards_app, ["verify", str(copy), "--sample", "0"])
    assert result.exit_code == 1
    assert entry.name in result.output and f"byte offset {byte_offset}" in result.output


def test_truncated_index_and_edited_docs_are_reported(copy):
    manifest = Manifest.load(copy)
    tokens, index, docs = shard_paths(copy, manifest.shards[0].name)
    index.write_bytes(index.read_bytes()[:-8])
    docs.write_bytes(shard_paths(copy, manifest.shards[1].name)[2].read_bytes())
    kinds = {(p.shard, p.kind) for p in verify(copy, sample=0, check_source=False).problems}
    assert (manifest.shards[0].name, "count") in kinds
    assert (manifest.shards[0].name, "sha256") in kinds


def test_missing_manifest_is_a_clear_error(copy):
    (copy / "manifest.json").unlink()
    result = runner.invoke(shards_app, ["verify", str(copy)])
    assert result.exit_code == 1 and "manifest.json" in result.output


def test_info_counts_by_source_and_language(built_shards):
    summary = info(built_shards.folder)
    manifest = Manifest.load(built_shards.folder)
    assert summary["tokens"] == manifest.total_tokens and summary["encoder"] == manifest.encoder != ""
    assert sum(v["documents"] for v in summary["by_source"].values()) == manifest.total_documents
    assert sum(v["tokens"] for v in summary["by_lang"].values()) == manifest.total_tokens
    assert {"lingua", "dolma_cc"} <= set(summary["by_source"]) and {"de", "ja", "en"} <= set(
        summary["by_lang"]
    )
    result = runner.invoke(shards_app, ["info", str(built_shards.folder), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["source_version"] == summary["source_version"]


def test_show_decodes_a_document_with_provenance(built_shards):
    data = built_shards.ctx.lake.dataset(built_shards.table).to_table().to_pylist()
    row = next(r for r in data if r["drop_reason"] is None and r["lang"] == "ja")
    found = show(built_shards.folder, row["doc_id"])
    assert found["text"] == row["text"] and found["source"] == "lingua" and found["lang"] == "ja"
    result = runner.invoke(shards_app, ["show", str(built_shards.folder), "--doc", row["doc_id"]])
    assert result.exit_code == 0 and found["shard"] in result.output
    assert f"source_row: source=lingua, locator={row['locator']}" in result.output  # not a dict's repr
    shown = json.loads(
        runner.invoke(shards_app, ["show", str(built_shards.folder), "--doc", row["doc_id"], "--json"]).output
    )
    assert shown["source_row"] == {"source": "lingua", "locator": row["locator"]}  # the columns the table has
    dropped = next(r for r in data if r["drop_reason"] is not None)
    result = runner.invoke(shards_app, ["show", str(built_shards.folder), "--doc", dropped["doc_id"]])
    assert result.exit_code == 1 and "in no shard" in result.output
    quoted = runner.invoke(shards_app, ["show", str(built_shards.folder), "--doc", "' OR 1=1 --"])
    assert 'document "\' OR 1=1 --" is in no shard' in " ".join(quoted.output.split())  # escaped once


def _fails_cleanly(*args: str):
    """Exit status 1 with a message, not an exception escaping (CliRunner reports both as status 1)."""
    result = CliRunner(env={"COLUMNS": "400"}).invoke(shards_app, list(args))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "Invalid JSON"),
        (b"[1, 2]", "<root>: Input should be an object"),
        (b'{"shards": "none"}', "shards: Input should be a valid array"),
        ('{"tokenizer_path": "caf\u00e9"}'.encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_a_damaged_manifest_is_named_by_every_command(copy, content: bytes, says: str):
    (copy / "manifest.json").write_bytes(content)
    for args in (["verify", "--no-source"], ["info"], ["show", "--doc", "any"]):
        result = _fails_cleanly(*args, str(copy))
        assert f"{copy / 'manifest.json'}: " in result.output and says in result.output, (args, result.output)
        assert "rebuild the set" in result.output


def test_a_manifest_cannot_name_files_outside_its_set(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["shards"][0]["name"] = "../../../../etc/passwd"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner(env={"COLUMNS": "400"}).invoke(shards_app, ["verify", "--no-source", str(copy)])
    assert (
        result.exit_code == 1 and "shards[0].name" in result.output and "not a path inside" in result.output
    )


def test_unreadable_shard_files_are_problems_of_that_shard_and_the_rest_is_checked(copy):
    """A .docs.parquet that is not Parquet, another with no rows: verify names both shards and still
    samples the others; info and show stop with the set named instead of a traceback."""
    manifest = Manifest.load(copy)
    first, second = (shard_paths(copy, e.name)[2] for e in manifest.shards[:2])
    first.write_bytes(b"not parquet at all")
    second.write_bytes(first.read_bytes()[:0])
    report = verify(copy, sample=20)
    kinds = {(p.shard, p.kind) for p in report.problems}
    assert (manifest.shards[0].name, "unreadable") in kinds and (
        manifest.shards[1].name,
        "unreadable",
    ) in kinds
    assert report.sampled == 20 and not any(p.kind == "content" for p in report.problems)
    for args in (["info"], ["show", "--doc", "any"]):
        result = CliRunner(env={"COLUMNS": "400"}).invoke(shards_app, [*args, str(copy)])
        assert (
            result.exit_code == 1
            and "is damaged" in result.output
            and "refinery shards verify" in result.output
        )


def test_a_source_table_that_is_not_there_is_one_clear_problem(copy, tmp_path):
    result = _fails_cleanly("verify", str(copy), "--lake", str(tmp_path / "elsewhere"))
    assert "[source]" in result.output and "--no-source" in result.output
