"""The `shards` stage: kept rows of a curated table -> tokenized shards + manifest.json.

The format and why: docs/architecture.md, "The shard format".

How the work is split: the driver lists the data files of the pinned Delta
snapshot (sorted; only paths travel) and Spark runs one task per file. Each task
streams its file with pyarrow in batches (only the needed columns), keeps rows
with `drop_reason` null, assigns train/validation by a seeded hash of the parent
id (`augmented_from`, else the document id, so augmented copies follow their
parent), tokenizes with the run's encoder (training/tokenizer/encoders.py: tokie once it has
reproduced HF tokenizers' ids on this run's check set, else HF's
`encode_batch_fast`) and writes shards of about `shard_tokens`
tokens per split, named by file index and sequence. Task output depends only on
the snapshot and the config, never on the cluster size or Spark's split sizes,
so a rerun writes byte-identical shards. Reading the files in the Python worker
(rather than a Spark scan, a shuffle and a sort) keeps the texts out of the JVM:
the stage then runs at the speed of the tokenizer (benchmarks/tokenize.py).
Tasks return one small summary per shard; the driver writes manifest.json from
those, last and atomically: without it the folder is not a shard set.

The folder may be on object storage (an `s3://` lake): tasks write through the I/O
layer (pipelines/framework/storage.py), each shard file appearing whole when its upload
completes, and the data files are read the same way; the manifest is still written last,
after every task has finished, so a reader never sees a half-written set.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from pipelines.framework.columns import require_columns
from pipelines.framework.spark import forward_storage_environment
from pipelines.framework.stage import Stage, StageContext, StageResult
from pipelines.framework.storage import Location
from training.shards.config import (
    ShardsConfig,
    fixed_output_folder,
    output_folder,
    require_output_folder,
    resolve_tokenizer_path,
)
from training.shards.format import MANIFEST_NAME, SPLITS, Manifest, ShardEntry, shard_paths
from training.shards.kernel import check_sample, write_file_shards
from training.tokenizer.encoders import encoder, resolve
from training.tokenizer.load import describe


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

    def preflight(self) -> None:
        """An `output_dir` of its own (absolute, a URL) is checked before Spark starts; one under the
        lake when the stage starts (`is_complete`, `run`), the lake being known only then."""
        fixed = fixed_output_folder(self.config)
        if fixed is not None:
            require_output_folder(fixed)

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
        require_output_folder(folder)
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
        return same and _all_files_present(folder, manifest.shards)

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        tokenizer_path = resolve_tokenizer_path(cfg.tokenizer)
        info = describe(tokenizer_path, cfg.eos_token)
        folder = output_folder(ctx.lake.root, cfg)
        require_output_folder(folder)
        source_version = self._source_version(ctx)
        snapshot = ctx.lake.delta(ctx.table(cfg.input), source_version)
        self._check_columns(snapshot)
        settings = Location.parse(ctx.lake.root).settings
        files = [Location.parse(uri, settings) for uri in sorted(snapshot.file_uris())]
        _clear(folder)
        entries: list[ShardEntry] = []
        payload = tokenizer_path.read_text(encoding="utf-8")
        chosen = resolve(cfg.encoder, payload, check_sample(files, cfg))
        if files:
            args = (folder, payload, chosen.encoder, info.dtype, info.eos_id, cfg)
            forward_storage_environment(ctx.spark)  # tasks read the table and write shards through storage
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
        """Before any task starts: the tasks read these columns by name with pyarrow."""
        names = pa.schema(snapshot.schema().to_arrow()).names
        wanted = [("text_column", self.config.text_column), ("id_column", self.config.id_column)]
        require_columns(self.config.input, names, wanted)


def _all_files_present(folder: Location, entries: list[ShardEntry]) -> bool:
    """Every file of every shard is there, tokens with the recorded size: one listing, not a request per file."""
    sizes = {e.location.url: e.size for e in folder.list()}
    for entry in entries:
        tokens, index, docs = shard_paths(folder, entry.name)
        if sizes.get(tokens.url) != entry.ds_bytes or index.url not in sizes or docs.url not in sizes:
            return False
    return True


def _clear(folder: Location) -> None:
    """Uncommit and empty an earlier build: the manifest goes first, so a half-cleared folder is never a set."""
    (folder / MANIFEST_NAME).delete()
    for split in SPLITS:
        (folder / split).delete_tree()
    folder.make_dirs()
