# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""Tokenizer training from a lake table (streamed sample), EOS handling and fertility."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.training.test_shards_fixtures import SCHEMA, corpus_rows, small_tokenizer, write_corpus  # noqa: F401
from training.shards.cli import tokenizer_app
from training.tokenizer.build import TableSample, train_bpe
from training.tokenizer.load import describe, load_tokenizer, resolve_eos

runner = CliRunner()


def test_cli_trains_on_kept_rows_and_reports_fertility_per_language(lake, shared_data, tmp_path):
    write_corpus(lake, "test/curated", shared_data)
    out = tmp_path / "tok.json"
    args = [
        "train",
        "--table",
        "test/curated",
        "--vocab-size",
        "600",
        "-o",
        str(out),
        "--lake",
        str(lake.root),
    ]
    result = runner.invoke(tokenizer_app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name("tok.json.report.json").read_text())
    assert (
        report["vocab_size"] == 600
        and report["eos_token"] == "<|endoftext|>"
        and report["table_version"] == lake.version("test/curated")
    )
    assert {"de", "ja", "ru", "en"} <= set(report["fertility"])
    assert all(f["tokens_per_word"] > 0.9 for f in report["fertility"].values())
    kept = sum(r["drop_reason"] is None for r in corpus_rows(shared_data))
    assert sum(f["documents"] for f in report["fertility"].values()) == kept

    again = tmp_path / "again.json"
    runner.invoke(tokenizer_app, [*args[:-4], "-o", str(again), "--lake", str(lake.root)])
    assert again.read_bytes() == out.read_bytes()


def test_byte_level_bpe_roundtrips_every_language(small_tokenizer, shared_data):
    tokenizer = load_tokenizer(small_tokenizer)
    for row in corpus_rows(shared_data):
        assert tokenizer.decode(tokenizer.encode(row["text"], add_special_tokens=False).ids) == row["text"]
    info = describe(small_tokenizer)
    assert info.eos_id == 0 and info.dtype == "uint16" and len(info.sha256) == 64


def test_sample_is_deterministic_and_skips_dropped_rows(lake, shared_data):
    write_corpus(lake, "test/curated", shared_data)
    dataset = lake.dataset("test/curated")
    first = list(TableSample(dataset, fraction=0.5, seed=3).texts())
    second = list(TableSample(dataset, fraction=0.5, seed=3).texts())
    other = list(TableSample(dataset, fraction=0.5, seed=4).texts())
    kept = {r["text"] for r in corpus_rows(shared_data) if r["drop_reason"] is None}
    assert first == second and first != other and set(first) <= kept and 0 < len(first) < len(kept)
    assert len(list(TableSample(dataset, max_documents=5).texts())) == 5


def test_missing_eos_and_tiny_vocab_are_clear_errors(small_tokenizer):
    with pytest.raises(ValueError, match="eos_token"):
        resolve_eos(load_tokenizer(small_tokenizer), "<nope>")
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(iter(["a b c"]), vocab_size=100)
    result = runner.invoke(tokenizer_app, ["info", "/nonexistent/tokenizer.json"])
    assert result.exit_code == 1 and "refinery tokenizer train" in result.output
