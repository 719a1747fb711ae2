"""Shard sets as the loader sees them: windows counted from the manifest, shards memory-mapped on demand.

Window counts come from the manifest's token counts, so start-up reads no shard; shards
open lazily through a small LRU of memory maps, so memory stays bounded whatever the shard
count (docs/architecture.md, "The loader").
"""

from __future__ import annotations

import hashlib
import os
import stat
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

# No file system holds a shard this large; bounding it keeps every window count and offset, summed over
# any number of shards, inside int64 (a manifest claiming 10**30 tokens used to overflow in numpy).
MAX_SHARD_BYTES = 2**48
VERIFY_HINT = "run `refinery shards verify` on the set to see what else is wrong, then restore or rebuild it"


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
        _check_entries(location, manifest, entries)
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

    def shard_file(self, shard: int) -> str:
        """The `.ds` file of the shard at position `shard`, as error messages name it."""
        return str(self.location / (self.entries[shard].name + TOKENS_SUFFIX))


def _check_entries(location: Location, manifest: Manifest, entries: list[ShardEntry]) -> None:
    """Refuse counts that disagree with each other before any arithmetic or read trusts them.

    Windows are cut from `tokens` while only the file's size is checked on open, so a manifest
    whose `tokens` and `ds_bytes` disagree (a wrong `dtype`, an edited count) used to fail deep in
    a batch copy naming no file, or overflow numpy. Costs one pass over the manifest, no file I/O.
    """
    itemsize = numpy_dtype(manifest.dtype).itemsize
    for e in entries:
        where = location / (e.name + TOKENS_SUFFIX)
        if e.tokens * itemsize != e.ds_bytes:
            problem = (
                f"the manifest says {e.tokens} {manifest.dtype} tokens ({e.tokens * itemsize} bytes) "
                f"but ds_bytes {e.ds_bytes}"
            )
        elif e.ds_bytes > MAX_SHARD_BYTES:
            problem = f"the manifest says {e.ds_bytes} bytes, more than any real shard ({MAX_SHARD_BYTES})"
        elif e.documents > e.tokens:
            problem = (
                f"the manifest says {e.documents} documents in {e.tokens} tokens (each ends with an EOS)"
            )
        else:
            continue
        raise ShardError(f"shard {where} does not match its manifest: {problem}; {VERIFY_HINT}")


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
            # stat first: opening a FIFO blocks until a writer appears, which hung the trainer
            mode = os.stat(path).st_mode
            if stat.S_ISREG(mode):
                return open(path, "rb")
        except FileNotFoundError:
            raise ShardError(
                f"shard file {path} is missing (listed in {shard_set.location / MANIFEST_NAME}); "
                "restore it or rebuild the shard set"
            ) from None
        except OSError as exc:
            raise ShardError(
                f"shard file {path} cannot be read: {exc.strerror or exc}; {VERIFY_HINT}"
            ) from None
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ShardError(f"shard file {path} is {kind}; {VERIFY_HINT}")

    def _open(self, shard_set: ShardSet, entry: ShardEntry) -> tuple[np.ndarray, np.ndarray | None]:
        with self._file(shard_set, entry.name + TOKENS_SUFFIX, entry.ds_bytes) as ds:
            size = os.fstat(ds.fileno()).st_size
            if size != entry.ds_bytes:
                raise ShardError(
                    f"shard {ds.name} is corrupted: {size} bytes on disk, the manifest says {entry.ds_bytes}; "
                    f"{VERIFY_HINT}"
                )
            if self.verify == "sha256" and sha256_stream(ds) != entry.ds_sha256:
                raise ShardError(
                    f"shard {ds.name} is corrupted: its sha256 does not match the manifest; {VERIFY_HINT}"
                )
            tokens = np.memmap(ds, dtype=numpy_dtype(shard_set.manifest.dtype), mode="r")
        index = self._index(shard_set, entry) if self.need_index else None
        return tokens, index

    def _index(self, shard_set: ShardSet, entry: ShardEntry) -> np.ndarray:
        """The shard's document end offsets, checked against the manifest's counts.

        Also checked: the offsets never decrease (window layouts binary-search them, so an
        out-of-order entry would silently give wrong position ids). One vectorised pass per open.
        """
        expected = entry.documents * INDEX_DTYPE.itemsize
        with self._file(shard_set, entry.name + INDEX_SUFFIX, expected) as idx:
            size = os.fstat(idx.fileno()).st_size
            if size != expected:
                raise ShardError(
                    f"shard index {idx.name} is corrupted: {size} bytes on disk, {entry.documents} documents "
                    f"in the manifest need {expected} ({INDEX_DTYPE.itemsize} per document); {VERIFY_HINT}"
                )
            index = np.memmap(idx, dtype=INDEX_DTYPE, mode="r") if size else np.zeros(0, INDEX_DTYPE)
            if len(index) and (int(index[-1]) != entry.tokens or bool(np.any(index[1:] < index[:-1]))):
                raise ShardError(
                    f"shard index {idx.name} is corrupted: its offsets are not increasing up to the "
                    f"{entry.tokens} tokens of the manifest; {VERIFY_HINT}"
                )
        return index
