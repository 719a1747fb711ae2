"""The `shards` stage's task: one data file of the snapshot -> tokenized shards, in the Python worker.

Arrow and the tokenizer only, no Spark import (the stage, training.shards.stage, ships
`write_file_shards` to one Spark task per file). Kept rows only; the split of a row is a
seeded hash of its parent id, so augmented copies follow their parent and no output
depends on its neighbours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipelines.framework.drop_reason import DROP_REASON, arrow_kept
from pipelines.framework.storage import Location
from training.shards.config import ShardsConfig
from training.shards.format import SPLITS, ShardEntry, TokenDType
from training.shards.writer import DocMeta, ShardWriter
from training.tokenizer.encoders import BatchEncoder, encoder

SPLIT_RESOLUTION = 1_000_000


def shard_name(split: str, partition: int, sequence: int) -> str:
    return f"{split}/part-{partition:05d}-{sequence:05d}"


class PartitionWriter:
    """Tokenizes one task's batches (one data file) and rolls shards per split; returns their manifest entries."""

    def __init__(
        self, folder: Location, partition: int, dtype: TokenDType, eos_id: int, config: ShardsConfig
    ):
        self.folder = folder
        self.partition = partition
        self.dtype = dtype
        self.eos_id = eos_id
        self.config = config
        self.writers: dict[str, ShardWriter] = {}
        self.sequence = dict.fromkeys(SPLITS, 0)

    def _writer(self, split: str) -> ShardWriter:
        if split not in self.writers:
            name = shard_name(split, self.partition, self.sequence[split])
            self.sequence[split] += 1
            self.writers[split] = ShardWriter(self.folder, name, split, self.dtype, self.eos_id)
        return self.writers[split]

    def write(self, batch: pa.RecordBatch, encoder: BatchEncoder) -> list[ShardEntry]:
        """Encode one batch and append its documents; returns the shards this batch filled."""
        cfg = self.config
        tokens, lengths = encoder.encode_flat(batch.column(cfg.text_column).to_pylist())
        ends = np.cumsum(lengths)
        ids = batch.column(cfg.id_column).to_pylist()
        splits = batch.column("_split").to_pylist()
        sources = batch.column("_source").to_pylist()
        langs = batch.column("_lang").to_pylist()
        scores = batch.column("_quality").to_pylist()
        done = []
        for i, end in enumerate(ends):
            writer = self._writer(splits[i])
            writer.add(tokens[end - lengths[i] : end], DocMeta(ids[i], sources[i], langs[i], scores[i]))
            if writer.tokens >= cfg.shard_tokens:
                done.append(writer.close())
                del self.writers[splits[i]]
        return done

    def finish(self) -> list[ShardEntry]:
        done = [self.writers[s].close() for s in SPLITS if s in self.writers]
        self.writers.clear()
        return done


def split_of(parent_ids: list[str], seed: int, validation_fraction: float) -> list[str]:
    """train/validation per parent id: a seeded hash, so a document's split never depends on its neighbours."""
    threshold = round(validation_fraction * SPLIT_RESOLUTION)
    prefix = f"{seed}\x1f".encode()
    return [
        "validation"
        if xxhash.xxh64_intdigest(prefix + p.encode()) % SPLIT_RESOLUTION < threshold
        else "train"
        for p in parent_ids
    ]


def prepare_batch(batch: pa.RecordBatch, config: ShardsConfig) -> pa.RecordBatch:
    """Kept rows with text and id, plus `_split` and the provenance columns under fixed names."""
    names = batch.schema.names
    mask = pc.and_(pc.is_valid(batch.column(config.text_column)), pc.is_valid(batch.column(config.id_column)))
    mask = pc.and_(mask, arrow_kept(batch))
    kept = batch.filter(mask)
    ids = pc.cast(kept.column(config.id_column), pa.string())
    parents = pc.coalesce(kept.column("augmented_from"), ids) if "augmented_from" in names else ids

    def optional(column: str, dtype: pa.DataType) -> pa.Array:
        return pc.cast(kept.column(column), dtype) if column in names else pa.nulls(kept.num_rows, dtype)

    return pa.RecordBatch.from_arrays(
        [
            ids,
            kept.column(config.text_column),
            pa.array(
                split_of(parents.to_pylist(), config.split_seed, config.validation_fraction), pa.string()
            ),
            optional("source", pa.string()),
            optional(config.lang_column, pa.string()),
            optional(config.quality_column, pa.float64()),
        ],
        names=[config.id_column, config.text_column, "_split", "_source", "_lang", "_quality"],
    )


def _wanted_columns(config: ShardsConfig) -> set[str]:
    return {
        config.id_column,
        config.text_column,
        DROP_REASON,
        "augmented_from",
        "source",
        config.lang_column,
        config.quality_column,
    }


@contextmanager
def _batches(data_file: Location, config: ShardsConfig) -> Iterator[Iterator[pa.RecordBatch]]:
    """Prepared (kept, provenance-labelled) batches of one data file of the snapshot, streamed."""
    wanted = _wanted_columns(config)
    with data_file.open_random() as handle:
        parquet = pq.ParquetFile(handle)
        columns = [c for c in parquet.schema_arrow.names if c in wanted]
        batches = (
            prepare_batch(b, config)
            for b in parquet.iter_batches(batch_size=config.batch_size, columns=columns)
        )
        yield (b for b in batches if b.num_rows)


def write_file_shards(
    unit: int,
    data_file: Location,
    folder: Location,
    tokenizer_json: str,
    encoder_name: str,
    dtype: TokenDType,
    eos_id: int,
    config: ShardsConfig,
) -> list[dict[str, Any]]:
    """One task: stream one data file of the snapshot into shards; returns their manifest entries."""
    batch_encoder = encoder(encoder_name, tokenizer_json)
    writer = PartitionWriter(folder, unit, dtype, eos_id, config)
    entries: list[ShardEntry] = []
    with _batches(data_file, config) as batches:
        for prepared in batches:
            entries.extend(writer.write(prepared, batch_encoder))
    entries.extend(writer.finish())
    return [e.model_dump() for e in entries]


def check_sample(files: list[Location], config: ShardsConfig) -> list[str]:
    """The first `check_docs` kept texts of the snapshot, read file by file (bounded on the driver)."""
    texts: list[str] = []
    for data_file in files:
        if len(texts) >= config.check_docs:
            break
        with _batches(data_file, config) as batches:
            for prepared in batches:
                texts.extend(
                    prepared.column(config.text_column).to_pylist()[: config.check_docs - len(texts)]
                )
                if len(texts) >= config.check_docs:
                    break
    return texts
