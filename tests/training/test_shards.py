# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""The shards stage on a real-text table: kept rows only, splits, determinism, resume, datatrove compatibility."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tests.training.test_shards_fixtures import (  # noqa: F401
    SCHEMA,
    built_shards,
    corpus_rows,
    shards_config,
    small_tokenizer,
)
from training.shards.config import ShardsConfig
from training.shards.format import Manifest, shard_paths
from training.shards.reader import ShardReader
from training.shards.stage import Shards
from training.tokenizer.load import load_tokenizer


def _stage(tokenizer, **overrides) -> Shards:
    return Shards(ShardsConfig(**shards_config(tokenizer, **overrides)))


def test_shards_hold_every_kept_document_once_with_exact_tokens(built_shards):
    folder, ctx = built_shards.folder, built_shards.ctx
    manifest = Manifest.load(folder)
    data = ctx.lake.dataset(built_shards.table).to_table()
    kept = data.filter(pc.is_null(data.column("drop_reason")))
    assert 0 < kept.num_rows < data.num_rows
    assert manifest.total_documents == kept.num_rows
    assert len(manifest.shards) > 2 and set(manifest.splits) == {"train", "validation"}
    assert (
        manifest.dtype == "uint16"
        and manifest.source_version == ctx.lake.version(built_shards.table)
        and manifest.source_table == "test/curated"
    )

    tokenizer = load_tokenizer(built_shards.tokenizer)
    texts = dict(zip(kept.column("doc_id").to_pylist(), kept.column("text").to_pylist(), strict=True))
    langs = dict(zip(kept.column("doc_id").to_pylist(), kept.column("lang").to_pylist(), strict=True))
    seen = []
    for entry in manifest.shards:
        reader = ShardReader.from_manifest(folder, manifest, entry.name)
        docs = reader.docs()
        assert len(reader) == docs.num_rows == entry.documents
        assert int(reader.ends[-1]) == entry.tokens == len(reader.tokens)
        assert np.all(reader.tokens[reader.ends.astype(np.int64) - 1] == manifest.eos_id)
        for i, row in enumerate(docs.to_pylist()):
            expected = tokenizer.encode(texts[row["doc_id"]], add_special_tokens=False).ids
            assert reader.document(i).tolist() == expected
            assert (row["token_start"], row["token_end"]) == reader.span(i)
            assert row["lang"] == langs[row["doc_id"]]
            seen.append(row["doc_id"])
    assert sorted(seen) == sorted(texts)


def test_rerun_is_byte_identical_and_resume_keys(built_shards, tmp_path):
    ctx = built_shards.ctx
    stage = _stage(built_shards.tokenizer)
    assert stage.is_complete(ctx, {})
    assert not _stage(built_shards.tokenizer, shard_tokens=5000).is_complete(ctx, {})
    assert not stage.is_complete(
        dataclasses.replace(ctx, versions={"curated": Manifest.load(built_shards.folder).source_version - 1}),
        {},
    )

    other = dataclasses.replace(ctx, work_dir=tmp_path)
    _stage(built_shards.tokenizer, output_dir=str(tmp_path / "again")).run(other)
    first, second = Manifest.load(built_shards.folder), Manifest.load(tmp_path / "again")
    assert [e.model_dump() for e in first.shards] == [e.model_dump() for e in second.shards]
    _assert_same_bytes(built_shards.folder, tmp_path / "again", first)


def _assert_same_bytes(folder: Path, other: Path, manifest: Manifest) -> None:
    """Every file of every shard in `manifest` is byte-identical in the two folders."""
    for entry in manifest.shards:
        for a, b in zip(shard_paths(folder, entry.name), shard_paths(other, entry.name), strict=True):
            assert a.read_bytes() == b.read_bytes()


def test_hf_encoder_writes_the_same_bytes_as_tokie(built_shards, tmp_path):
    """The default run encoded with tokie after its check; HF tokenizers must write identical shards."""
    built = Manifest.load(built_shards.folder)
    assert built.encoder.startswith("tokie ")
    other = dataclasses.replace(built_shards.ctx, work_dir=tmp_path)
    result = _stage(built_shards.tokenizer, output_dir=str(tmp_path / "hf"), encoder="hf").run(other)
    assert result.metrics["encoder"] == "hf"
    again = Manifest.load(tmp_path / "hf")
    assert again.encoder.startswith("tokenizers ")
    assert [e.ds_sha256 for e in again.shards] == [e.ds_sha256 for e in built.shards]
    _assert_same_bytes(built_shards.folder, tmp_path / "hf", built)


def test_augmented_rows_follow_their_parent_split(stage_ctx, lake, shared_data, small_tokenizer):
    base = pa.Table.from_pylist(corpus_rows(shared_data), schema=SCHEMA)
    base = base.filter(pc.is_null(base.column("drop_reason")))
    copies = base.set_column(0, "doc_id", pc.binary_join_element_wise(base.column("doc_id"), "aug", "-"))
    base = base.append_column("augmented_from", pa.nulls(base.num_rows, pa.string()))
    copies = copies.append_column("augmented_from", base.column("doc_id"))
    lake.write_arrow(pa.concat_tables([base, copies]), "test/augmented")
    _stage(small_tokenizer, input="augmented", validation_fraction=0.3).run(stage_ctx)
    folder = lake.root / "shards" / "default"
    split_of = {}
    for entry in Manifest.load(folder).shards:
        for doc_id in pq.read_table(shard_paths(folder, entry.name)[2], columns=["doc_id"])[
            "doc_id"
        ].to_pylist():
            split_of[doc_id] = entry.split
    parents = base.column("doc_id").to_pylist()
    assert {split_of[p] for p in parents} == {"train", "validation"}
    assert all(split_of[f"{p}-aug"] == split_of[p] for p in parents)


def test_datatrove_reader_reads_our_tokens(built_shards):
    from datatrove.utils.dataset import DatatroveFolderDataset

    folder = built_shards.folder
    manifest = Manifest.load(folder)
    seq_len = 63
    for split in ("train", "validation"):
        dataset = DatatroveFolderDataset(
            str(folder / split), seq_len=seq_len, filename_pattern="*.ds", token_size=2, return_positions=True
        )
        ours, positions = [], []
        for entry in sorted(manifest.shard_entries(split), key=lambda e: e.name):
            reader = ShardReader.from_manifest(folder, manifest, entry.name)
            tokens = np.asarray(reader.tokens)
            windows = len(tokens) // (seq_len + 1)
            ours.append(tokens[: windows * (seq_len + 1)].reshape(-1, seq_len + 1))
            positions.append(_window_positions(np.asarray(reader.ends, dtype=np.int64), windows, seq_len + 1))
        expected, expected_positions = np.concatenate(ours), np.concatenate(positions)
        assert len(dataset) == len(expected) > 0
        for i in range(len(dataset)):
            sample = dataset[i]
            assert sample["input_ids"].tolist() == expected[i].tolist()
            # datatrove reads our .ds.index itself (native little-endian uint64): its positions must
            # restart exactly where our documents end.
            assert sample["positions"].tolist() == expected_positions[i].tolist(), (split, i)
        assert (expected_positions[:, 1:] == 0).any()  # document ends fall inside windows: a real check


def _window_positions(ends: np.ndarray, windows: int, width: int) -> np.ndarray:
    """Each token's offset in its document, restarting at every window (datatrove's definition)."""
    index = np.arange(windows * width, dtype=np.int64).reshape(windows, width)
    window_start = index[:, :1]
    doc_start = np.concatenate([[0], ends])[np.searchsorted(ends, index, side="right")]
    return index - np.maximum(doc_start, window_start)
