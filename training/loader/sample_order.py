"""The order of training samples: keyed permutations of each set's windows and the mixing of sets.

Both are pure functions of their keys and positions, computed on the fly with no per-sample
table, so the loader's only state is a sample count (docs/architecture.md, "The loader").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

MIX_PERIOD = 10_000  # mixing resolution: proportions are exact over every 10,000 consecutive samples
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


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
            self.slots = _slot_counts(w, self.period)
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


def _slot_counts(w: np.ndarray, period: int) -> np.ndarray:
    """Integer slots per set summing to `period`: largest remainder, at least one per positive weight."""
    share = w / w.sum() * period
    slots = np.floor(share).astype(np.int64)
    slots[(w > 0) & (slots == 0)] = 1
    order = np.argsort(-(share - slots), kind="stable")
    i = 0
    while slots.sum() < period:
        slots[order[i % len(w)]] += 1
        i += 1
    while slots.sum() > period:
        slots[np.argmax(slots)] -= 1
    return slots
