"""Random access to written shards of the format (training.shards.format): memory maps and provenance.

For inspection, `verify` and the tests; the training loader reads windows through
`training.loader.shard_sets`, which needs neither the provenance table nor per-document access.
Local shards are memory-mapped; a shard on object storage is read into memory whole, one shard
at a time (inspection walks shards one by one, so memory stays one shard's size).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.framework.storage import Location
from training.shards.format import INDEX_DTYPE, Manifest, TokenDType, numpy_dtype, shard_paths

Where = str | os.PathLike[str] | Location


def open_tokens(path: Where, dtype: TokenDType) -> np.ndarray:
    """The .ds file as a read-only array (a memory map when local)."""
    return _open_array(Location.parse(path), numpy_dtype(dtype), f"{dtype} tokens (truncated shard?)")


def open_index(path: Where) -> np.ndarray:
    """The .ds.index file (uint64 document end offsets) as a read-only array (a memory map when local)."""
    return _open_array(Location.parse(path), INDEX_DTYPE, "uint64 offsets (truncated index?)")


def _open_array(location: Location, dtype: np.dtype, unit: str) -> np.ndarray:
    """A read-only view of a headerless array file; an empty array for an empty file, which mmap refuses."""
    size = location.size()
    if size % dtype.itemsize:
        raise ValueError(f"{location}: {size} bytes is not a whole number of {unit}")
    if size == 0:
        return np.zeros(0, dtype=dtype)
    if location.is_local:
        return np.memmap(location.local_path(), dtype=dtype, mode="r")
    return np.frombuffer(location.read_bytes(), dtype=dtype)


def read_docs(location: Location, columns: list[str] | None = None) -> pa.Table:
    """A .docs.parquet table, local or on object storage."""
    return pq.read_table(location.fs_path, columns=columns, filesystem=location.fs)


def doc_span(ends: np.ndarray, i: int) -> tuple[int, int]:
    """[start, end) token span of document i given the index; the span ends with the EOS token."""
    if not 0 <= i < len(ends):
        raise IndexError(f"document {i} out of range (shard has {len(ends)})")
    return (int(ends[i - 1]) if i else 0), int(ends[i])


class ShardReader:
    """Random access to one shard: memory-mapped tokens and index, and its provenance table."""

    def __init__(self, directory: Where, name: str, dtype: TokenDType):
        self.directory = Location.parse(directory)
        self.name = name
        self.dtype = dtype
        self.tokens_path, self.index_path, self.docs_path = shard_paths(directory, name)
        self.tokens = open_tokens(self.tokens_path, dtype)
        self.ends = open_index(self.index_path)

    @classmethod
    def from_manifest(cls, directory: Where, manifest: Manifest, name: str) -> ShardReader:
        return cls(directory, name, manifest.dtype)

    def __len__(self) -> int:
        return len(self.ends)

    def span(self, i: int) -> tuple[int, int]:
        return doc_span(self.ends, i)

    def document(self, i: int, with_eos: bool = False) -> np.ndarray:
        """Token ids of document i (a view into the memory map), EOS excluded unless asked."""
        start, end = self.span(i)
        return self.tokens[start : end if with_eos else end - 1]

    def iter_documents(self, with_eos: bool = False) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.document(i, with_eos)

    def docs(self, columns: list[str] | None = None) -> pa.Table:
        """The .docs.parquet table (row i describes document i)."""
        return read_docs(self.docs_path, columns)

    def find(self, doc_id: str) -> int | None:
        """Position of `doc_id` in this shard, or None (reads only the doc_id column)."""
        return _position_in_docs(self.docs_path, doc_id)


def _position_in_docs(docs_path: Location, doc_id: str) -> int | None:
    ids = read_docs(docs_path, ["doc_id"]).column("doc_id")
    matches = np.flatnonzero(pc.equal(ids, doc_id).to_numpy(zero_copy_only=False))
    return int(matches[0]) if len(matches) else None


def locate_document(directory: Where, manifest: Manifest, doc_id: str) -> tuple[str, int] | None:
    """(shard name, position) of a document id across the set, scanning each shard's doc_id column."""
    for entry in manifest.shards:
        position = _position_in_docs(shard_paths(directory, entry.name)[2], doc_id)
        if position is not None:
            return entry.name, position
    return None
