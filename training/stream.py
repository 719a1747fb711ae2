"""TokenStream: a deterministic, elastic, memory-mapped stream of training windows over shard sets.

DESIGN decision 7. The whole order of training samples is a pure function of
(manifests, seed, epoch, seq_len), so the loader's state is one number: global
samples consumed (the epoch follows from it). Resuming on another world size or
worker count is exact because nothing else is remembered.

How a global stream position p becomes tokens:

1. *Mixing.* With several shard sets, p is mapped to (set i, position k_i inside
   set i's own stream) by a fixed, periodic, smooth interleaving of integer slot
   counts proportional to the weights (`Mixture`): O(1) per sample, no state.
2. *Epoch and permutation.* Set i's stream is its windows repeated epoch after
   epoch: epoch e = k_i // N_i, and window = P_{seed,i,e}(k_i % N_i), where P is a
   keyed Feistel permutation of [0, N_i) with cycle walking (`KeyedPermutation`):
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

Shards open lazily through a small LRU of memory maps (memory stays bounded
whatever the shard count). Remote shard sets (any fsspec URL) are copied into a
local cache with a byte bound and least-recently-used eviction.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from training.shard_format import (
    INDEX_DTYPE,
    INDEX_SUFFIX,
    MANIFEST_NAME,
    TOKENS_SUFFIX,
    Manifest,
    ShardEntry,
    numpy_dtype,
    sha256_file,
)

STATE_VERSION = 1
MIX_PERIOD = 10_000  # mixing resolution: proportions are exact over every 10,000 consecutive samples
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


class ShardError(RuntimeError):
    """A shard that is missing, truncated or does not match its manifest; the message names the file."""


# ------------------------------------------------------------------------------------------ permutation
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a fast, well-mixed 64-bit hash (uint64 arithmetic wraps in numpy)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _U64(30))) * _MIX1
    z = (z ^ (z >> _U64(27))) * _MIX2
    return z ^ (z >> _U64(31))


def derive_key(*parts: object) -> int:
    """A 64-bit key from any printable parts (stable across processes and Python versions)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class KeyedPermutation:
    """A pseudo-random bijection of [0, n) from a key: a 4-round balanced Feistel network with cycle walking.

    Why a Feistel network: it is a permutation of [0, 2^2h) by construction for any round
    function, so it needs no table; cycle walking (re-applying while the result is >= n)
    restricts it to [0, n) and stays a bijection. The domain is at most 4n, so the expected
    number of walks is below 4. Everything is vectorized over numpy uint64 arrays.
    """

    ROUNDS = 4

    def __init__(self, n: int, key: int) -> None:
        if n <= 0:
            raise ValueError("a permutation needs a positive domain size")
        self.n = n
        self.half = max(1, ((n - 1).bit_length() + 1) // 2)
        self.mask = _U64((1 << self.half) - 1)
        self.keys = [_U64(derive_key(key, r)) for r in range(self.ROUNDS)]

    def _round_trip(self, x: np.ndarray) -> np.ndarray:
        shift = _U64(self.half)
        left, right = x >> shift, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (_splitmix64(right ^ k) & self.mask)
        return (left << shift) | right

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        out = self._round_trip(np.asarray(idx, dtype=np.uint64))
        bad = out >= self.n
        while bad.any():
            out[bad] = self._round_trip(out[bad])
            bad = out >= self.n
        return out.astype(np.int64)


class Identity:
    """The unshuffled order (for inspection and sequential evaluation)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx, dtype=np.int64)


# ----------------------------------------------------------------------------------------------- mixing
class Mixture:
    """Deterministic weighted interleaving of several streams, stateless and O(1) per position.

    Weights become integer slot counts m_i over a period of MIX_PERIOD positions (largest
    remainder, at least one slot for every positive weight). Inside a period, set i's slots sit
    at the fractional points (t + 0.5) / m_i, merged in order: a smooth interleave, so any
    stretch of the stream holds each set close to its share, not only whole periods.
    Position p maps to (set, q * m_i + rank of p's slot among set i's slots), q = p // period.
    """

    def __init__(self, weights: Sequence[float]) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if len(w) == 0 or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"mixture weights must be non-negative with a positive sum, got {list(weights)}")
        if len(w) == 1:
            self.period, self.slots = 1, np.array([1])
        else:
            self.period = MIX_PERIOD
            share = w / w.sum() * self.period
            slots = np.floor(share).astype(np.int64)
            slots[(w > 0) & (slots == 0)] = 1
            order = np.argsort(-(share - slots), kind="stable")
            i = 0
            while slots.sum() < self.period:
                slots[order[i % len(w)]] += 1
                i += 1
            while slots.sum() > self.period:
                slots[np.argmax(slots)] -= 1
            self.slots = slots
        sets = np.concatenate([np.full(m, s) for s, m in enumerate(self.slots)])
        points = np.concatenate([(np.arange(m) + 0.5) / m for m in self.slots])
        order = np.lexsort((sets, points))
        self.pattern = sets[order]
        self.rank = np.concatenate([np.arange(m) for m in self.slots])[order]

    def __call__(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(set index, position inside that set's stream) for each global position."""
        q, j = np.divmod(positions, self.period)
        sets = self.pattern[j]
        return sets, q * self.slots[sets] + self.rank[j]


# ----------------------------------------------------------------------------------------- remote cache
def is_remote(location: str) -> bool:
    """True for fsspec URLs other than plain local paths (file:// is treated as local)."""
    return "://" in location and not location.startswith("file://")


def _local_path(location: str) -> Path:
    return Path(location.removeprefix("file://"))


class ShardCache:
    """A local folder holding copies of remote shard files, bounded in bytes, least recently used out first.

    Files are downloaded under a temporary name and renamed, so concurrent workers never see half
    a file. Eviction only unlinks: a shard some process has memory-mapped stays readable (POSIX).
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def fetch(self, url: str, size: int) -> Path:
        import fsspec

        local = self.directory / hashlib.sha1(url.encode()).hexdigest()[:20] / url.rsplit("/", 1)[-1]
        if local.is_file() and local.stat().st_size == size:
            os.utime(local)  # mark as recently used
            return local
        if size > self.max_bytes:
            raise ShardError(
                f"{url}: {size} bytes does not fit the shard cache bound of {self.max_bytes} bytes"
            )
        self._make_room(size)
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        os.close(fd)
        try:
            fs, path = fsspec.core.url_to_fs(url)
            if not fs.exists(path):
                raise ShardError(f"shard file {url} is missing (listed in the manifest of its shard set)")
            fs.get_file(path, tmp)
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return local

    def _make_room(self, incoming: int) -> None:
        files = [p for p in self.directory.glob("*/*") if p.is_file() and not p.name.startswith(".")]
        stats = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in files), key=lambda t: t[0])
        total = sum(size for _, size, _ in stats)
        for _, size, path in stats:
            if total + incoming <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*/*") if p.is_file())


# ------------------------------------------------------------------------------------------- shard sets
def load_manifest(location: str) -> Manifest:
    """Manifest of a local folder or an fsspec URL, with an error that says what to do."""
    if not is_remote(location):
        return Manifest.load(_local_path(location))
    import fsspec

    url = f"{location.rstrip('/')}/{MANIFEST_NAME}"
    try:
        with fsspec.open(url, "rt") as handle:
            return Manifest.model_validate_json(handle.read())
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no {MANIFEST_NAME} at {location}: not a shard set, or never committed"
        ) from exc


@dataclass
class ShardSet:
    """One shard folder (local or remote), one split, cut into windows of `seq_len + 1` tokens."""

    location: str
    manifest: Manifest
    split: str
    seq_len: int
    entries: list[ShardEntry]
    window_starts: np.ndarray  # cumulative windows before each shard, length n_shards + 1

    @classmethod
    def open(cls, location: str, split: str, seq_len: int) -> ShardSet:
        manifest = load_manifest(str(location))
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
        return cls(str(location), manifest, split, seq_len, entries, starts)

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


class _OpenShards:
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

    def _file(self, shard_set: ShardSet, relative: str, size: int) -> Path:
        """Local path of one of a shard's files, fetched into the cache first when the set is remote."""
        if is_remote(shard_set.location):
            assert self.cache is not None
            return self.cache.fetch(f"{shard_set.location.rstrip('/')}/{relative}", size)
        path = _local_path(shard_set.location) / relative
        if not path.is_file():
            raise ShardError(
                f"shard file {path} is missing (listed in {path_join(shard_set.location, MANIFEST_NAME)}); "
                "restore it or rebuild the shard set"
            )
        return path

    def _open(self, shard_set: ShardSet, entry: ShardEntry) -> tuple[np.ndarray, np.ndarray | None]:
        ds = self._file(shard_set, entry.name + TOKENS_SUFFIX, entry.ds_bytes)
        size = ds.stat().st_size
        if size != entry.ds_bytes:
            raise ShardError(
                f"shard {ds} is corrupted: {size} bytes on disk, the manifest says {entry.ds_bytes}"
            )
        if self.verify == "sha256" and sha256_file(ds) != entry.ds_sha256:
            raise ShardError(f"shard {ds} is corrupted: its sha256 does not match the manifest")
        tokens = np.memmap(ds, dtype=numpy_dtype(shard_set.manifest.dtype), mode="r")
        index = None
        if self.need_index:
            idx_file = self._file(
                shard_set, entry.name + INDEX_SUFFIX, entry.documents * INDEX_DTYPE.itemsize
            )
            index = (
                np.memmap(idx_file, dtype=INDEX_DTYPE, mode="r")
                if entry.documents
                else np.zeros(0, INDEX_DTYPE)
            )
            if len(index) != entry.documents or (len(index) and int(index[-1]) != entry.tokens):
                raise ShardError(f"shard index {idx_file} is corrupted: it does not match the manifest")
        return tokens, index


def path_join(location: str, name: str) -> str:
    return f"{location.rstrip('/')}/{name}"


# -------------------------------------------------------------------------------------------- the stream
@dataclass(frozen=True)
class Source:
    """A shard set and its mixing weight."""

    path: str
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
        self._shards: _OpenShards | None = None

    def _check_compatible(self) -> None:
        first = self.sets[0].manifest
        for s in self.sets[1:]:
            if s.manifest.tokenizer_sha256 != first.tokenizer_sha256 or s.manifest.eos_id != first.eos_id:
                raise ValueError(
                    f"shard sets {self.sets[0].location} and {s.location} were tokenized with different "
                    "tokenizers (tokenizer_sha256 / eos_id differ); mix only sets built with one tokenizer"
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
            self._shards = _OpenShards(self.max_open_shards, self.cache, self.verify, self.boundaries)
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
