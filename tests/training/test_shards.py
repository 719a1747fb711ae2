# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""The shards stage on a real-text table: kept rows only, splits, determinism, resume, datatrove compatibility."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.training.test_shards_fixtures import (  # noqa: F401
    SCHEMA,
    corpus_rows,
    corpus_table,
    small_tokenizer,
    write_corpus,
)
from training.shard_format import Manifest, ShardReader, shard_paths
from training.shards_stage import Shards, ShardsConfig
from training.tokenizer import load_tokenizer


def _stage(tokenizer, **overrides) -> Shards:
    config = {"tokenizer": str(tokenizer), "shard_tokens": 4000, "validation_fraction": 0.2, "partitions": 2}
    return Shards(ShardsConfig(**{**config, **overrides}))


def _kept(lake, table: str) -> pa.Table:
    data = lake.dataset(table).to_table()
    return data.filter(pa.compute.is_null(data.column("drop_reason")))


def test_shards_hold_every_kept_document_once_with_exact_tokens(stage_ctx, corpus_table, small_tokenizer):
    result = _stage(small_tokenizer).run(stage_ctx)
    folder = stage_ctx.lake.root / "shards" / "default"
    manifest = Manifest.load(folder)
    kept = _kept(stage_ctx.lake, corpus_table)
    assert manifest.total_documents == kept.num_rows == result.metrics["documents"]
    assert result.metrics["shards"] == len(manifest.shards) > 2
    assert set(manifest.splits) == {"train", "validation"}
    assert manifest.dtype == "uint16" and manifest.source_version == 0

    tokenizer = load_tokenizer(small_tokenizer)
    texts = dict(zip(kept.column("doc_id").to_pylist(), kept.column("text").to_pylist(), strict=True))
    seen = []
    for entry in manifest.shards:
        reader = ShardReader.from_manifest(folder, manifest, entry.name)
        docs = reader.docs()
        assert len(reader) == docs.num_rows == entry.documents
        assert int(reader.ends[-1]) == entry.tokens == len(reader.tokens)
        assert np.all(reader.tokens[reader.ends.astype(np.int64) - 1] == manifest.eos_id)
        for i, doc_id in enumerate(docs.column("doc_id").to_pylist()):
            expected = tokenizer.encode(texts[doc_id], add_special_tokens=False).ids
            assert reader.document(i).tolist() == expected
            seen.append(doc_id)
    assert sorted(seen) == sorted(texts)


def test_rerun_is_byte_identical_and_resume_skips(stage_ctx, corpus_table, small_tokenizer):
    stage = _stage(small_tokenizer)
    stage.run(stage_ctx)
    folder = stage_ctx.lake.root / "shards" / "default"
    first = Manifest.load(folder)
    assert stage.is_complete(stage_ctx, {})
    stage.run(stage_ctx)
    second = Manifest.load(folder)
    assert [e.model_dump() for e in first.shards] == [e.model_dump() for e in second.shards]
    for entry in second.shards:
        for path in shard_paths(folder, entry.name):
            assert path.exists()
    assert not _stage(small_tokenizer, shard_tokens=5000).is_complete(stage_ctx, {})


def test_new_table_version_is_not_complete(stage_ctx, corpus_table, small_tokenizer, shared_data):
    stage = _stage(small_tokenizer)
    stage.run(stage_ctx)
    write_corpus(stage_ctx.lake, corpus_table, shared_data)
    assert not stage.is_complete(stage_ctx, {})


def test_augmented_rows_follow_their_parent_split(stage_ctx, lake, shared_data, small_tokenizer):
    base = pa.Table.from_pylist(corpus_rows(shared_data), schema=SCHEMA)
    base = base.filter(pa.compute.is_null(base.column("drop_reason")))
    copies = base.set_column(
        0, "doc_id", pa.compute.binary_join_element_wise(base.column("doc_id"), "aug", "-")
    )
    base = base.append_column("augmented_from", pa.nulls(base.num_rows, pa.string()))
    copies = copies.append_column("augmented_from", base.column("doc_id"))
    lake.write_arrow(pa.concat_tables([base, copies]), "test/augmented")
    _stage(small_tokenizer, input="augmented", validation_fraction=0.3).run(stage_ctx)
    folder = lake.root / "shards" / "default"
    manifest = Manifest.load(folder)
    split_of = {}
    for entry in manifest.shards:
        for doc_id in pq.read_table(shard_paths(folder, entry.name)[2], columns=["doc_id"])[
            "doc_id"
        ].to_pylist():
            split_of[doc_id] = entry.split
    parents = base.column("doc_id").to_pylist()
    assert {split_of[p] for p in parents} == {"train", "validation"}
    assert all(split_of[f"{p}-aug"] == split_of[p] for p in parents)


def test_datatrove_reader_reads_our_tokens(stage_ctx, corpus_table, small_tokenizer):
    from datatrove.utils.dataset import DatatroveFolderDataset

    _stage(small_tokenizer).run(stage_ctx)
    folder = stage_ctx.lake.root / "shards" / "default"
    manifest = Manifest.load(folder)
    seq_len = 63
    for split in ("train", "validation"):
        dataset = DatatroveFolderDataset(
            str(folder / split), seq_len=seq_len, filename_pattern="*.ds", token_size=2, return_positions=True
        )
        ours = []
        for entry in sorted(manifest.shard_entries(split), key=lambda e: e.name):
            tokens = np.asarray(ShardReader.from_manifest(folder, manifest, entry.name).tokens)
            usable = len(tokens) // (seq_len + 1) * (seq_len + 1)
            ours.append(tokens[:usable].reshape(-1, seq_len + 1))
        expected = np.concatenate(ours)
        assert len(dataset) == len(expected) > 0
        for i in range(len(dataset)):
            sample = dataset[i]
            assert sample["input_ids"].tolist() == expected[i].tolist()
            assert sample["positions"][0] == 0
