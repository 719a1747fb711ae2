"""`refinery shards info` and `show`: a shard set's totals and provenance, and one document decoded.

Both read the manifest and the `.docs.parquet` files; a set they cannot read stops with a
ShardError naming it and pointing at `refinery shards verify`, which checks every shard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipelines.framework.storage import Location
from training.shards.format import Manifest, ShardError, shard_paths
from training.shards.reader import ShardReader, locate_document
from training.shards.verify import READ_ERRORS
from training.tokenizer.load import load_tokenizer


def info(folder: str | os.PathLike[str] | Location) -> dict[str, Any]:
    """Totals, per split, per source and per language (from the .docs.parquet files), and the provenance."""
    folder = Location.parse(folder)
    manifest = Manifest.load(folder)
    docs_files = [shard_paths(folder, e.name)[2].fs_path for e in manifest.shards]
    groups: dict[str, dict[str, dict[str, int]]] = {"source": {}, "lang": {}}
    if docs_files:
        try:
            table = pads.dataset(docs_files, format="parquet", filesystem=folder.fs).to_table(
                columns=["source", "lang", "token_start", "token_end"]
            )
            table = table.append_column(
                "tokens", pc.subtract(table.column("token_end"), table.column("token_start"))
            )
        except READ_ERRORS as exc:
            raise _damaged(folder, exc) from None
        for key in groups:
            agg = table.group_by(key).aggregate([("tokens", "sum"), ("tokens", "count")])
            for row in agg.to_pylist():
                groups[key][row[key] or "unknown"] = {
                    "documents": row["tokens_count"],
                    "tokens": row["tokens_sum"],
                }
    return {
        "folder": str(folder),
        "source_table": manifest.source_table,
        "source_version": manifest.source_version,
        "source_lake": manifest.source_lake,
        "tokenizer": manifest.tokenizer_path,
        "tokenizer_sha256": manifest.tokenizer_sha256,
        "vocab_size": manifest.vocab_size,
        "dtype": manifest.dtype,
        "eos": {"token": manifest.eos_token, "id": manifest.eos_id},
        "encoder": manifest.encoder,
        "tokens": manifest.total_tokens,
        "documents": manifest.total_documents,
        "shards": len(manifest.shards),
        "splits": {k: v.model_dump() for k, v in manifest.splits.items()},
        "mixture_weights": manifest.mixture_weights,
        "by_source": dict(sorted(groups["source"].items())),
        "by_lang": dict(sorted(groups["lang"].items())),
    }


def show(
    folder: str | os.PathLike[str] | Location, doc_id: str, tokenizer_path: str | Path | None = None
) -> dict[str, Any]:
    """A document's decoded text with its shard, span and provenance row."""
    folder = Location.parse(folder)
    manifest = Manifest.load(folder)
    try:
        found = locate_document(folder, manifest, doc_id)
    except READ_ERRORS as exc:
        raise _damaged(folder, exc) from None
    if found is None:
        raise KeyError(f"document {doc_id!r} is in no shard of {folder} (dropped rows are not sharded)")
    name, i = found
    try:
        reader = ShardReader.from_manifest(folder, manifest, name)
        row = reader.docs().slice(i, 1).to_pylist()[0]
        tokens = reader.document(i).tolist()
    except READ_ERRORS as exc:
        raise _damaged(folder, exc, name) from None
    tokenizer = load_tokenizer(tokenizer_path or manifest.tokenizer_path)
    return {
        "shard": name,
        "position": i,
        "split": next(e.split for e in manifest.shards if e.name == name),
        **row,
        "tokens": len(tokens),
        "byte_offset": row["token_start"] * manifest.numpy_dtype.itemsize,
        "source_table": manifest.source_table,
        "source_version": manifest.source_version,
        "text": tokenizer.decode(tokens),
    }


def _damaged(folder: Location, exc: BaseException, shard: str | None = None) -> ShardError:
    """What info and show say of a shard they cannot read: which set, what failed, and what names the shard."""
    where = f"shard {shard} of {folder}" if shard else str(folder)
    return ShardError(
        f"{where} is damaged ({type(exc).__name__}: {exc}); `refinery shards verify {folder}` checks every shard"
    )
