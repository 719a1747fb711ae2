"""`refinery shards info` and `show`: a shard set's totals and provenance, and one document decoded.

Both read the manifest and the `.docs.parquet` files; a set they cannot read stops with a
ShardError naming it and pointing at `refinery shards verify`, which checks every shard.
Neither hashes anything, so each file they read is first checked cheaply: a regular file (a FIFO
blocks, a device never ends) inside the set's folder (a link out of it would print another file
as a document), and for `show` sizes and offsets that agree with the manifest (a truncated shard
would print a cut document, or none, as if it were whole).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipelines.framework.storage import Location
from training.shards.format import INDEX_DTYPE, Manifest, ShardEntry, ShardError, shard_paths
from training.shards.reader import ShardReader, locate_document
from training.shards.verify import READ_ERRORS
from training.tokenizer.load import load_tokenizer


def info(folder: str | os.PathLike[str] | Location) -> dict[str, Any]:
    """Totals, per split, per source and per language (from the .docs.parquet files), and the provenance."""
    folder = Location.parse(folder)
    manifest = Manifest.load(folder)
    docs_locations = [shard_paths(folder, e.name)[2] for e in manifest.shards]
    for location in docs_locations:
        _require_file(folder, location)
    docs_files = [location.fs_path for location in docs_locations]
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
    for entry in manifest.shards:  # the search reads every .docs.parquet
        _require_file(folder, shard_paths(folder, entry.name)[2])
    try:
        found = locate_document(folder, manifest, doc_id)
    except READ_ERRORS as exc:
        raise _damaged(folder, exc) from None
    if found is None:
        raise KeyError(f"document {doc_id!r} is in no shard of {folder} (dropped rows are not sharded)")
    name, i = found
    entry = next(e for e in manifest.shards if e.name == name)
    try:
        reader = _checked_reader(folder, manifest, entry)
        row = reader.docs().slice(i, 1).to_pylist()[0]
        tokens = reader.document(i).tolist()
    except READ_ERRORS as exc:
        raise _damaged(folder, exc, name) from None
    if (row["token_start"], row["token_end"]) != reader.span(i):
        span = f"[{row['token_start']}, {row['token_end']})"
        raise _mismatch(
            folder, reader.docs_path, f"row {i} spans tokens {span}, the index {list(reader.span(i))}"
        )
    tokenizer = load_tokenizer(tokenizer_path or manifest.tokenizer_path)
    return {
        "shard": name,
        "position": i,
        "split": entry.split,
        **row,
        "tokens": len(tokens),
        "byte_offset": row["token_start"] * manifest.numpy_dtype.itemsize,
        "source_table": manifest.source_table,
        "source_version": manifest.source_version,
        "text": tokenizer.decode(tokens),
    }


def _require_file(folder: Location, location: Location) -> None:
    """Refuse a shard file that is not a regular file inside the set, before anything opens it.

    Object storage holds neither links nor devices, so only local files are checked.
    """
    if not location.is_local:
        return
    path = location.local_path()
    try:
        mode = path.stat().st_mode
        resolved = path.resolve()
    except FileNotFoundError:
        raise _mismatch(folder, location, "is missing") from None
    except OSError as exc:
        raise _mismatch(folder, location, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise _mismatch(folder, location, "is a folder" if stat.S_ISDIR(mode) else "is not a regular file")
    if not resolved.is_relative_to(folder.local_path().resolve()):
        raise _mismatch(folder, location, f"resolves to {resolved}, outside the shard set")


def _checked_reader(folder: Location, manifest: Manifest, entry: ShardEntry) -> ShardReader:
    """A reader of one shard whose token and index files agree with the manifest in size and offsets."""
    tokens_path, index_path, _ = shard_paths(folder, entry.name)
    ds_bytes = entry.tokens * manifest.numpy_dtype.itemsize
    if entry.ds_bytes != ds_bytes:
        what = f"is listed with ds_bytes {entry.ds_bytes}, but {entry.tokens} {manifest.dtype} tokens take {ds_bytes}"
        raise _mismatch(folder, tokens_path, what)
    for location, need in ((tokens_path, ds_bytes), (index_path, entry.documents * INDEX_DTYPE.itemsize)):
        _require_file(folder, location)
        size = location.size()
        if size != need:
            raise _mismatch(folder, location, f"holds {size} bytes, the manifest says {need}")
    reader = ShardReader.from_manifest(folder, manifest, entry.name)
    ends = reader.ends
    if len(ends) and (int(ends[-1]) != entry.tokens or ends[0] == 0 or bool(np.any(ends[1:] <= ends[:-1]))):
        raise _mismatch(
            folder, index_path, f"offsets do not increase up to the manifest's {entry.tokens} tokens"
        )
    rows = reader.docs(["doc_id"]).num_rows
    if rows != entry.documents:
        raise _mismatch(folder, reader.docs_path, f"holds {rows} rows, the manifest says {entry.documents}")
    return reader


def _mismatch(folder: Location, location: Location, what: str) -> ShardError:
    """One line naming the file and the check that tells what else is wrong with the set."""
    return ShardError(f"shard file {location} {what}; `refinery shards verify {folder}` checks every shard")


def _damaged(folder: Location, exc: BaseException, shard: str | None = None) -> ShardError:
    """What info and show say of a shard they cannot read: which set, what failed, and what names the shard."""
    where = f"shard {shard} of {folder}" if shard else str(folder)
    return ShardError(
        f"{where} is damaged ({type(exc).__name__}: {exc}); `refinery shards verify {folder}` checks every shard"
    )
