"""TokenStream: a deterministic, elastic, memory-mapped stream of training windows over shard sets.

See docs/architecture.md, "The loader". The whole order of training samples is a pure
function of (manifests, seed, epoch, seq_len), so the loader's state is one number:
global samples consumed (the epoch follows from it). Resuming on another world size or
worker count is exact because nothing else is remembered.

How a global stream position p becomes tokens:

1. *Mixing.* With several shard sets, p is mapped to (set i, position k_i inside
   set i's own stream) by a fixed, periodic, smooth interleaving of integer slot
   counts proportional to the weights (`sample_order.Mixture`): O(1) per sample, no state.
2. *Epoch and permutation.* Set i's stream is its windows repeated epoch after
   epoch: epoch e = k_i // N_i, and window = P_{seed,i,e}(k_i % N_i), where P is a
   keyed Feistel permutation of [0, N_i) with cycle walking (`sample_order.KeyedPermutation`):
   a bijection computed on the fly, no per-sample table in memory.
3. *Windows.* A window is `seq_len + 1` tokens starting at a multiple of `seq_len`
   inside one shard (targets overlap inputs by one token, as in nanoGPT); windows
   never cross shards. Window counts come from the manifest's token counts, so
   start-up reads no shard (10,000 shards start in well under a second).

Who reads what: step t of a run that started at position p0 covers positions
[p0 + t*W*B, p0 + (t+1)*W*B); rank r takes the r-th block of B. With K
DataLoader workers, worker k produces steps t = k, k+K, k+2K, ... which is
exactly the order in which the DataLoader hands batches out (it round-robins
workers), so every rank's batches appear in step order. There is no assignment of
shards to workers, so any number of shards works with any W x K.

Shards open lazily through a small LRU of memory maps (`shard_sets.OpenShards`: memory
stays bounded whatever the shard count). Remote shard sets (s3://, gs://, az://, http(s)://,
read through the I/O layer pipelines/framework/storage.py) are copied into a local cache with
a byte bound and least-recently-used eviction (`shard_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from training.loader.sample_order import Identity, KeyedPermutation, Mixture, derive_key
from training.loader.shard_cache import ShardCache, is_remote
from training.loader.shard_sets import VERIFY_HINT, OpenShards, ShardSet
from training.shards.format import MANIFEST_NAME, Manifest, ShardError

STATE_VERSION = 1


@dataclass(frozen=True)
class Source:
    """A shard set and its mixing weight."""

    path: str  # a folder or a URL such as s3://bucket/lake/shards/web
    weight: float = 1.0


class TokenStream(IterableDataset):
    """Batches of fixed-length windows in a deterministic global order; see the module docstring.

    Yields dicts of tensors: `input_ids` and `labels` (B, seq_len) int64, `sample_ids` (B,) (a
    window's index across all sets, stable for the data), `positions` (B,) (global stream
    position, unique), and with `boundaries=True` also `position_ids` (restarting at every
    document) and `doc_ids` (document ordinal inside the window, for masked attention).
    Use it through `StreamLoader` (or `DataLoader(stream, batch_size=None)`).
    """

    def __init__(
        self,
        sources: Sequence[Source | str],
        seq_len: int,
        batch_size: int,
        *,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
        boundaries: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        max_samples: int | None = None,
        max_open_shards: int = 64,
        verify: Literal["size", "sha256"] = "size",
        cache_dir: str | os.PathLike[str] | None = None,
        cache_max_bytes: int = 20 * 2**30,
    ) -> None:
        super().__init__()
        if seq_len <= 0 or batch_size <= 0:
            raise ValueError("seq_len and batch_size must be positive")
        srcs = [s if isinstance(s, Source) else Source(str(s)) for s in sources]
        self.sets = [ShardSet.open(s.path, split, seq_len) for s in srcs]
        self._check_compatible()
        self.weights = [s.weight for s in srcs]
        self.mixture = Mixture(self.weights)
        self.seq_len, self.batch_size, self.seed, self.shuffle = seq_len, batch_size, seed, shuffle
        self.boundaries = boundaries
        self.rank, self.world_size = _resolve_rank(rank, world_size)
        self.max_samples = max_samples
        self.max_open_shards, self.verify = max_open_shards, verify
        remote = any(is_remote(s.location) for s in self.sets)
        cache_root = Path(cache_dir or Path.home() / ".cache" / "refinery" / "shards")
        self.cache = ShardCache(cache_root, cache_max_bytes) if remote else None
        self.set_offsets = np.concatenate([[0], np.cumsum([s.num_windows for s in self.sets])])
        self.samples_consumed = 0
        self._perms: dict[tuple[int, int], KeyedPermutation | Identity] = {}
        self._shards: OpenShards | None = None

    def _check_compatible(self) -> None:
        first = self.sets[0].manifest
        for s in self.sets[1:]:
            m = s.manifest
            if (m.tokenizer_sha256, m.eos_id, m.vocab_size) != (
                first.tokenizer_sha256,
                first.eos_id,
                first.vocab_size,
            ):
                raise ValueError(
                    f"shard sets {self.sets[0].location} and {s.location} were tokenized with different "
                    "tokenizers (tokenizer_sha256 / eos_id / vocab_size differ); mix only sets built with one "
                    "tokenizer"
                )

    # ---- identity and state
    @property
    def manifest(self) -> Manifest:
        return self.sets[0].manifest

    @property
    def epoch_length(self) -> int:
        """Samples in one nominal epoch: every window of every set once."""
        return int(self.set_offsets[-1])

    def fingerprint(self) -> str:
        parts = [s.fingerprint() for s in self.sets] + [
            repr(self.weights),
            self.seq_len,
            self.seed,
            self.shuffle,
        ]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: samples consumed by all ranks together, and the epoch."""
        return {
            "version": STATE_VERSION,
            "samples_consumed": self.samples_consumed,
            "epoch": self.samples_consumed // self.epoch_length,
            "fingerprint": self.fingerprint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"loader state version {state.get('version')} is not {STATE_VERSION}")
        if state["fingerprint"] != self.fingerprint():
            raise ValueError(
                "the loader state was saved for other data (shard sets, weights, seq_len, seed or shuffle "
                "differ); resume with the same data configuration or start a new run"
            )
        self.samples_consumed = int(state["samples_consumed"])

    # ---- sample addressing
    def _perm(self, set_idx: int, epoch: int) -> KeyedPermutation | Identity:
        key = (set_idx, epoch)
        if key not in self._perms:
            n = self.sets[set_idx].num_windows
            self._perms[key] = (
                KeyedPermutation(
                    n, derive_key(self.seed, self.sets[set_idx].fingerprint(), epoch, self.seq_len)
                )
                if self.shuffle
                else Identity(n)
            )
            if len(self._perms) > 64:
                self._perms.pop(next(iter(self._perms)))
        return self._perms[key]

    def windows_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(set index, window index inside the set) of global stream positions: the pure order function."""
        sets, inner = self.mixture(np.asarray(positions, dtype=np.int64))
        windows = np.empty_like(inner)
        for s in np.unique(sets):
            sel = sets == s
            n = self.sets[s].num_windows
            epochs, within = np.divmod(inner[sel], n)
            out = np.empty_like(within)
            for e in np.unique(epochs):
                esel = epochs == e
                out[esel] = self._perm(int(s), int(e))(within[esel])
            windows[sel] = out
        return sets, windows

    def sample_ids(self, positions: np.ndarray) -> np.ndarray:
        sets, windows = self.windows_at(positions)
        return self.set_offsets[sets] + windows

    # ---- iteration
    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if self._shards is None:
            self._shards = OpenShards(self.max_open_shards, self.cache, self.verify, self.boundaries)
        step_span = self.world_size * self.batch_size
        start = self.samples_consumed
        step = worker
        while True:
            first = start + step * step_span
            if self.max_samples is not None and first + step_span > self.max_samples:
                return
            positions = first + self.rank * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
            batch = self._batch(positions)
            if info is None:  # in-process iteration: the stream itself keeps the count
                self.samples_consumed = first + step_span
            yield batch
            step += workers

    def _batch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        sets, windows = self.windows_at(positions)
        B, T = len(positions), self.seq_len
        buf = np.empty((B, T + 1), dtype=np.int64)
        pos_ids = np.empty((B, T), dtype=np.int64) if self.boundaries else None
        doc_ids = np.empty((B, T), dtype=np.int64) if self.boundaries else None
        for s in np.unique(sets):
            rows = np.flatnonzero(sets == s)
            shard_idx, offsets = self.sets[s].locate(windows[rows])
            for row, shard, off in zip(rows, shard_idx, offsets, strict=True):
                tokens, index = self._shards.get(self.sets, int(s), int(shard))
                buf[row] = tokens[off : off + T + 1]
                if index is not None:
                    pos_ids[row], doc_ids[row] = _document_layout(index, int(off), T)
        # One vectorised max per batch: an id past the vocabulary otherwise dies in the embedding
        # ("index out of range", a device-side assert on CUDA) naming neither the shard nor the id.
        if int(buf.max()) >= self.manifest.vocab_size:
            self._raise_out_of_vocabulary(buf, sets, windows)
        t = torch.from_numpy(buf)
        out = {
            "input_ids": t[:, :-1],
            "labels": t[:, 1:],
            "sample_ids": torch.from_numpy(self.set_offsets[sets] + windows),
            "positions": torch.from_numpy(positions),
        }
        if self.boundaries:
            out["position_ids"] = torch.from_numpy(pos_ids)
            out["doc_ids"] = torch.from_numpy(doc_ids)
        return out

    def _raise_out_of_vocabulary(self, buf: np.ndarray, sets: np.ndarray, windows: np.ndarray) -> None:
        """Name the first shard, offset and id of `buf` at or past the vocabulary (the slow path of a bad batch)."""
        vocab = self.manifest.vocab_size
        row = int(np.flatnonzero(buf.max(axis=1) >= vocab)[0])
        shard_set = self.sets[int(sets[row])]
        shard, offsets = shard_set.locate(windows[row : row + 1])
        col = int(np.flatnonzero(buf[row] >= vocab)[0])
        raise ShardError(
            f"shard {shard_set.shard_file(int(shard[0]))} holds token id {int(buf[row, col])} at token "
            f"{int(offsets[0]) + col}, past the vocabulary ({vocab} ids in {shard_set.location / MANIFEST_NAME}); "
            f"{VERIFY_HINT}"
        )


def _document_layout(index: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Position ids (restarting at each document, and at the window start) and document ordinals."""
    positions = np.arange(start, start + length, dtype=np.int64)
    lo = int(np.searchsorted(index, start, side="right"))
    hi = int(np.searchsorted(index, start + length, side="right"))
    ends = np.asarray(index[lo:hi], dtype=np.int64)
    doc = np.searchsorted(ends, positions, side="right")
    doc_start = np.concatenate([[start], ends])[doc]
    return positions - doc_start, doc


def _resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else torch.distributed, else torchrun's environment, else a single process."""
    if rank is not None and world_size is not None:
        r, w = rank, world_size
    elif torch.distributed.is_available() and torch.distributed.is_initialized():
        r, w = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        r, w = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= r < w:
        raise ValueError(f"rank {r} is outside world size {w}")
    return r, w


class StreamLoader:
    """A DataLoader over a TokenStream that counts what the training loop actually received.

    With workers, batches are prefetched ahead of the loop; counting in the main process (not in
    the workers) makes `state_dict()` say exactly how many samples the model has seen, so resuming
    replays nothing and skips nothing.
    """

    def __init__(
        self, stream: TokenStream, num_workers: int = 0, pin_memory: bool = False, prefetch: int = 4
    ):
        self.stream = stream
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prefetch = prefetch
        self.wait_seconds = 0.0  # time the consumer spent blocked on data

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        extra = {"prefetch_factor": self.prefetch, "persistent_workers": False} if self.num_workers else {}
        # Its own generator: a DataLoader otherwise draws its worker seed from the global torch RNG on every
        # iter(), which would shift the model's dropout masks after a resume (the stream needs no randomness).
        loader = DataLoader(
            self.stream,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(0),
            **extra,
        )
        step_span = self.stream.world_size * self.stream.batch_size
        start = self.stream.samples_consumed
        it = iter(loader)
        steps = 0
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.wait_seconds += time.perf_counter() - t0
            steps += 1
            self.stream.samples_consumed = start + steps * step_span
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)
