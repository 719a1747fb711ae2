"""The `shards` stage: kept rows of a curated table -> tokenized shards + manifest.json.

The format and why: docs/architecture.md, "The shard format".

How the work is split: the driver lists the data files of the pinned Delta
snapshot (sorted; only paths travel) and Spark runs one task per file. Each task
streams its file with pyarrow in batches (only the needed columns), keeps rows
with `drop_reason` null, assigns train/validation by a seeded hash of the parent
id (`augmented_from`, else the document id, so augmented copies follow their
parent), tokenizes with the run's encoder (training/encoders.py: tokie once it has
reproduced HF tokenizers' ids on this run's check set, else HF's
`encode_batch_fast`) and writes shards of about `shard_tokens`
tokens per split, named by file index and sequence. Task output depends only on
the snapshot and the config, never on the cluster size or Spark's split sizes,
so a rerun writes byte-identical shards. Reading the files in the Python worker
(rather than a Spark scan, a shuffle and a sort) keeps the texts out of the JVM:
the stage then runs at the speed of the tokenizer (benchmarks/tokenize.py).
Tasks return one small summary per shard; the driver writes manifest.json from
those, last and atomically: without it the folder is not a shard set.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash
from pydantic import Field, field_validator

from pipelines.framework.drop_reason import DROP_REASON, arrow_kept
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult
from training.encoders import BatchEncoder, EncoderChoice, encoder, resolve
from training.shard_format import MANIFEST_NAME, SPLITS, Manifest, ShardEntry, TokenDType, shard_paths
from training.shard_writer import DocMeta, ShardWriter
from training.tokenizer import describe

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TOKENIZER = "samples/tokenizer.json"
SPLIT_RESOLUTION = 1_000_000


class ShardsConfig(StageConfig):
    input: str = Field("curated", description="dataset table to tokenize (kept rows only)")
    name: str = Field("default", description="shard set name: the folder is <lake>/shards/<name> by default")
    output_dir: str | None = Field(
        None, description="shard folder; relative paths resolve under the lake root"
    )
    tokenizer: str = Field(
        DEFAULT_TOKENIZER, description="HF tokenizer.json; relative paths try cwd, then the repo"
    )
    eos_token: str | None = Field(
        None, description="EOS token; default: the first common EOS name in the vocab"
    )
    shard_tokens: int = Field(
        1 << 22, gt=0, description="a shard is closed once it holds at least this many tokens"
    )
    validation_fraction: float = Field(0.01, ge=0.0, le=1.0)
    split_seed: int = 0
    batch_size: int = Field(512, gt=0, description="documents per encoder call")
    encoder: EncoderChoice = Field(
        "auto",
        description="auto: tokie if it reproduces HF tokenizers on the check set, else HF; tokie: that or fail; hf",
    )
    check_docs: int = Field(
        256, ge=0, description="kept documents of the input (from its first files) in the encoder check set"
    )
    text_column: str = "text"
    id_column: str = "doc_id"
    lang_column: str = "lang"
    quality_column: str = "quality_score"
    mixture_weights: dict[str, float] = Field(
        default_factory=dict, description="mixture the table was built with (recorded in the manifest)"
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("name must be a plain folder name (no '/', not hidden)")
        return value


def resolve_tokenizer_path(path: str) -> Path:
    """A relative tokenizer path is tried against the working directory, then the repository root."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (REPO / candidate).resolve()


def output_folder(lake_root: Path, config: ShardsConfig) -> Path:
    if config.output_dir is None:
        return lake_root / "shards" / config.name
    folder = Path(config.output_dir).expanduser()
    return folder if folder.is_absolute() else lake_root / folder


def shard_name(split: str, partition: int, sequence: int) -> str:
    return f"{split}/part-{partition:05d}-{sequence:05d}"


class PartitionWriter:
    """Tokenizes one task's batches (one data file) and rolls shards per split; returns their manifest entries."""

    def __init__(self, folder: str, partition: int, dtype: TokenDType, eos_id: int, config: ShardsConfig):
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
def _batches(uri: str, config: ShardsConfig) -> Iterator[Iterator[pa.RecordBatch]]:
    """Prepared (kept, provenance-labelled) batches of one data file of the snapshot, streamed."""
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(uri)
    wanted = _wanted_columns(config)
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        columns = [c for c in parquet.schema_arrow.names if c in wanted]
        batches = (
            prepare_batch(b, config)
            for b in parquet.iter_batches(batch_size=config.batch_size, columns=columns)
        )
        yield (b for b in batches if b.num_rows)


def write_file_shards(
    unit: int,
    uri: str,
    folder: str,
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
    with _batches(uri, config) as batches:
        for prepared in batches:
            entries.extend(writer.write(prepared, batch_encoder))
    entries.extend(writer.finish())
    return [e.model_dump() for e in entries]


def check_sample(files: list[str], config: ShardsConfig) -> list[str]:
    """The first `check_docs` kept texts of the snapshot, read file by file (bounded on the driver)."""
    texts: list[str] = []
    for uri in files:
        if len(texts) >= config.check_docs:
            break
        with _batches(uri, config) as batches:
            for prepared in batches:
                texts.extend(
                    prepared.column(config.text_column).to_pylist()[: config.check_docs - len(texts)]
                )
                if len(texts) >= config.check_docs:
                    break
    return texts


class Shards(Stage):
    """Tokenize kept rows into train/validation shards with provenance and a manifest."""

    name = "shards"
    Config = ShardsConfig
    row_policy: ClassVar[str] = "none"
    config: ShardsConfig

    def input_tables(self) -> list[str]:
        return [self.config.input]

    def output_tables(self) -> list[str]:
        return []

    def _source_version(self, ctx: StageContext) -> int:
        pinned = ctx.versions.get(self.config.input)
        if pinned is not None:
            return pinned
        version = ctx.lake.version(ctx.table(self.config.input))
        if version is None:
            raise FileNotFoundError(
                f"input table {ctx.table(self.config.input)} does not exist in {ctx.lake.root}"
            )
        return version

    def is_complete(self, ctx: StageContext, key: dict[str, str]) -> bool:
        """Complete when the folder's manifest was built from the same table version, config and tokenizer
        and every shard file it lists is present with the recorded size (hashes are `verify`'s job)."""
        folder = output_folder(ctx.lake.root, self.config)
        try:
            manifest = Manifest.load(folder)
            tokenizer = describe(resolve_tokenizer_path(self.config.tokenizer), self.config.eos_token)
            version = self._source_version(ctx)
        except (FileNotFoundError, ValueError):
            return False
        same = (
            manifest.source_table == ctx.table(self.config.input)
            and manifest.source_version == version
            and manifest.config_hash == self.config.config_hash()
            and manifest.tokenizer_sha256 == tokenizer.sha256
        )
        return same and all(_files_present(folder, e) for e in manifest.shards)

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        tokenizer_path = resolve_tokenizer_path(cfg.tokenizer)
        info = describe(tokenizer_path, cfg.eos_token)
        folder = output_folder(ctx.lake.root, cfg)
        source_version = self._source_version(ctx)
        snapshot = ctx.lake.delta(ctx.table(cfg.input), source_version)
        self._check_columns(snapshot)
        files = sorted(snapshot.file_uris())
        _clear(folder)
        entries: list[ShardEntry] = []
        payload = tokenizer_path.read_text(encoding="utf-8")
        chosen = resolve(cfg.encoder, payload, check_sample(files, cfg))
        if files:
            args = (str(folder), payload, chosen.encoder, info.dtype, info.eos_id, cfg)
            tasks = ctx.spark.sparkContext.parallelize(list(enumerate(files)), len(files))
            rows = tasks.flatMap(
                lambda item: write_file_shards(item[0], item[1], *args)
            ).collect()  # one per shard
            entries = sorted((ShardEntry(**row) for row in rows), key=lambda e: e.name)
        manifest = Manifest(
            tokenizer_path=info.path,
            tokenizer_sha256=info.sha256,
            vocab_size=info.vocab_size,
            dtype=info.dtype,
            eos_token=info.eos_token,
            eos_id=info.eos_id,
            source_lake=str(ctx.lake.root),
            source_table=ctx.table(cfg.input),
            source_version=source_version,
            id_column=cfg.id_column,
            text_column=cfg.text_column,
            config_hash=cfg.config_hash(),
            run_id=ctx.run_id,
            shard_tokens=cfg.shard_tokens,
            validation_fraction=cfg.validation_fraction,
            split_seed=cfg.split_seed,
            mixture_weights=cfg.mixture_weights,
            encoder=encoder(chosen.encoder, payload).name,
            shards=entries,
        )
        manifest.summarize()
        manifest.save(folder)
        metrics = {
            "tokens": manifest.total_tokens,
            "documents": manifest.total_documents,
            "shards": len(entries),
            "splits": {k: v.model_dump() for k, v in manifest.splits.items()},
            "output_dir": str(folder),
            "encoder": chosen.encoder,
            "encoder_reason": chosen.reason,
        }
        return StageResult(metrics=metrics, files=[str(folder / MANIFEST_NAME)])

    def _check_columns(self, snapshot: Any) -> None:
        names = pa.schema(snapshot.schema().to_arrow()).names
        for required in (self.config.text_column, self.config.id_column):
            if required not in names:
                raise ValueError(f"table {self.config.input!r} has no {required!r} column (columns: {names})")


def _files_present(folder: Path, entry: ShardEntry) -> bool:
    tokens, index, docs = shard_paths(folder, entry.name)
    return tokens.is_file() and tokens.stat().st_size == entry.ds_bytes and index.is_file() and docs.is_file()


def _clear(folder: Path) -> None:
    """Uncommit and empty an earlier build: the manifest goes first, so a half-cleared folder is never a set."""
    (folder / MANIFEST_NAME).unlink(missing_ok=True)
    for split in SPLITS:
        shutil.rmtree(folder / split, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
