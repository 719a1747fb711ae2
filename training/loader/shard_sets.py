"""Shard sets as the loader sees them: windows counted from the manifest, shards memory-mapped on demand.

Window counts come from the manifest's token counts, so start-up reads no shard; shards
open lazily through a small LRU of memory maps, so memory stays bounded whatever the shard
count (docs/architecture.md, "The loader").
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np

from pipelines.framework.storage import Location
from training.loader.shard_cache import ShardCache, is_remote
from training.shards.format import (
    INDEX_DTYPE,
    INDEX_SUFFIX,
    MANIFEST_NAME,
    TOKENS_SUFFIX,
    Manifest,
    ShardEntry,
    ShardError,
    numpy_dtype,
    sha256_stream,
)


@dataclass
class ShardSet:
    """One shard folder (local or remote), one split, cut into windows of `seq_len + 1` tokens."""

    location: Location
    manifest: Manifest
    split: str
    seq_len: int
    entries: list[ShardEntry]
    window_starts: np.ndarray  # cumulative windows before each shard, length n_shards + 1

    @classmethod
    def open(cls, where: str | os.PathLike[str] | Location, split: str, seq_len: int) -> ShardSet:
        location = Location.parse(where)
        manifest = Manifest.load(location)
        entries = manifest.shard_entries(split)
        if not entries:
            raise ValueError(
                f"{location}: the manifest lists no {split!r} shards (splits: {sorted(manifest.splits)})"
            )
        tokens = np.fromiter((e.tokens for e in entries), dtype=np.int64, count=len(entries))
        windows = np.where(tokens > seq_len, (tokens - 1) // seq_len, 0)
        starts = np.concatenate([[0], np.cumsum(windows)])
        if starts[-1] == 0:
            raise ValueError(
                f"{location} ({split}): no shard holds {seq_len + 1} tokens, so there is no window of seq_len "
                f"{seq_len}; use a shorter seq_len or larger shards"
            )
        return cls(location, manifest, split, seq_len, entries, starts)

    @property
    def num_windows(self) -> int:
        return int(self.window_starts[-1])

    def fingerprint(self) -> str:
        """Identity of the data (not of its location): moving a shard set to object storage keeps the order."""
        h = hashlib.sha256(f"{self.split}:{self.manifest.tokenizer_sha256}".encode())
        for e in self.entries:
            h.update(e.ds_sha256.encode())
        return h.hexdigest()[:16]

    def locate(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard position, first token offset) of each window index."""
        shard = np.searchsorted(self.window_starts, windows, side="right") - 1
        return shard, (windows - self.window_starts[shard]) * self.seq_len


class OpenShards:
    """LRU of memory-mapped shards (tokens and, when needed, the document index), checked on open."""

    def __init__(
        self, max_open: int, cache: ShardCache | None, verify: Literal["size", "sha256"], need_index: bool
    ) -> None:
        self.max_open = max_open
        self.cache = cache
        self.verify = verify
        self.need_index = need_index
        self.maps: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = OrderedDict()

    def get(self, sets: list[ShardSet], set_idx: int, shard_idx: int) -> tuple[np.ndarray, np.ndarray | None]:
        key = (set_idx, shard_idx)
        hit = self.maps.get(key)
        if hit is not None:
            self.maps.move_to_end(key)
            return hit
        opened = self._open(sets[set_idx], sets[set_idx].entries[shard_idx])
        self.maps[key] = opened
        if len(self.maps) > self.max_open:
            self.maps.popitem(last=False)
        return opened

    def _file(self, shard_set: ShardSet, relative: str, size: int) -> BinaryIO:
        """An open handle on one of a shard's files, fetched into the cache first when the set is remote."""
        if is_remote(shard_set.location):
            assert self.cache is not None
            return self.cache.open(shard_set.location / relative, size)
        path = shard_set.location.local_path() / relative
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise ShardError(
                f"shard file {path} is missing (listed in {shard_set.location / MANIFEST_NAME}); "
                "restore it or rebuild the shard set"
            ) from None

    def _open(self, shard_set: ShardSet, entry: ShardEntry) -> tuple[np.ndarray, np.ndarray | None]:
        with self._file(shard_set, entry.name + TOKENS_SUFFIX, entry.ds_bytes) as ds:
            size = os.fstat(ds.fileno()).st_size
            if size != entry.ds_bytes:
                raise ShardError(
                    f"shard {ds.name} is corrupted: {size} bytes on disk, the manifest says {entry.ds_bytes}"
                )
            if self.verify == "sha256" and sha256_stream(ds) != entry.ds_sha256:
                raise ShardError(f"shard {ds.name} is corrupted: its sha256 does not match the manifest")
            tokens = np.memmap(ds, dtype=numpy_dtype(shard_set.manifest.dtype), mode="r")
        index = self._index(shard_set, entry) if self.need_index else None
        return tokens, index

    def _index(self, shard_set: ShardSet, entry: ShardEntry) -> np.ndarray:
        """The shard's document end offsets, checked against the manifest's counts."""
        with self._file(shard_set, entry.name + INDEX_SUFFIX, entry.documents * INDEX_DTYPE.itemsize) as idx:
            index = (
                np.memmap(idx, dtype=INDEX_DTYPE, mode="r") if entry.documents else np.zeros(0, INDEX_DTYPE)
            )
            if len(index) != entry.documents or (len(index) and int(index[-1]) != entry.tokens):
                raise ShardError(f"shard index {idx.name} is corrupted: it does not match the manifest")
        return index
