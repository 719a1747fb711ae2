"""MinHash signatures over Arrow batches, and the LSH banding arithmetic.

The permutations are datasketch's default scheme ("affine32", datasketch >= 2.0):
the 32-bit shingle hash is pre-mixed with the MurmurHash3 finalizer, then each of
`num_perm` permutations maps it to `a_k * h + b_k mod 2^32` with odd `a_k`; `a`
and `b` are drawn from `numpy.random.RandomState(seed)` exactly as datasketch
draws them. So for the same num_perm, seed and shingle hashes, our signature is
datasketch's `MinHash.hashvalues`, bit for bit (tests/dedup assert it), while
the work is done for a whole batch at once: one matrix product per chunk of
shingles and a `minimum.reduceat` per document, instead of Python per document.

A signature is stored as `num_perm` little-endian uint32 in a binary column
(`minhash`); documents without a single token get null (an empty set matches
nothing, whereas datasketch's all-max signature would collide with every other
empty document).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.kernels.shingles import TextNorm, Tokenization, fold_hashes, tokenize

MAX_HASH = np.uint32(0xFFFFFFFF)
_CHUNK_SHINGLES = 4096
_BAND_MUL = np.uint64(0xC2B2AE3D27D4EB4F)


def collision_probability(s: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """P(s) = 1 - (1 - s^r)^b: the chance that two documents of Jaccard s share a band."""
    return 1.0 - (1.0 - np.power(s, rows)) ** bands


def _area(bands: int, rows: int, lo: float, hi: float, complement: bool) -> float:
    grid = np.linspace(lo, hi, 201)
    values = collision_probability(grid, bands, rows)
    return float(np.trapezoid(1.0 - values if complement else values, grid))


def optimal_bands(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """Bands and rows (b * r <= num_perm) minimising the weighted false-positive and false-negative areas.

    False positives: the area under P(s) for s < threshold; false negatives: the
    area above it for s >= threshold (the same criterion datasketch uses).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold}")
    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            error = fp_weight * _area(bands, rows, 0.0, threshold, False) + fn_weight * _area(
                bands, rows, threshold, 1.0, True
            )
            if error < best_error:
                best, best_error = (bands, rows), error
    return best


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (odd a, any b) for `seed`."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(h: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finalizer (a bijection) applied element-wise, wrapping."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@dataclass(frozen=True)
class MinHashSpec:
    """Everything that determines a signature and its bands; equal specs give equal signatures."""

    num_perm: int = 112
    bands: int = 14
    rows: int = 8
    seed: int = 1
    ngram: int = 5
    tokenization: Tokenization = "words"
    norm: TextNorm = field(default_factory=TextNorm)

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows ({self.bands} x {self.rows}) exceeds num_perm ({self.num_perm})")
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {self.ngram}")

    @classmethod
    def for_threshold(cls, threshold: float, num_perm: int = 112, **kwargs: object) -> MinHashSpec:
        bands, rows = optimal_bands(threshold, num_perm)
        return cls(num_perm=num_perm, bands=bands, rows=rows, **kwargs)  # type: ignore[arg-type]


def _signature_matrix(hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """(documents x num_perm) minima of the permuted shingle hashes; rows of empty documents stay MAX_HASH."""
    a, b = permutations(num_perm, seed)
    ndocs = len(offsets) - 1
    result = np.full((ndocs, num_perm), MAX_HASH, dtype=np.uint32)
    mixed = fmix32(hashes)
    buf = np.empty((_CHUNK_SHINGLES, num_perm), dtype=np.uint32)
    total = len(mixed)
    with np.errstate(over="ignore"):
        for lo in range(0, total, _CHUNK_SHINGLES):
            hi = min(lo + _CHUNK_SHINGLES, total)
            chunk = buf[: hi - lo]
            np.multiply(mixed[lo:hi, None], a, out=chunk)
            np.add(chunk, b, out=chunk)
            first = int(np.searchsorted(offsets, lo, side="right")) - 1
            last = int(np.searchsorted(offsets, hi, side="left"))
            docs = np.arange(first, last)
            docs = docs[(offsets[docs + 1] > offsets[docs]) & (offsets[docs + 1] > lo)]
            starts = np.maximum(offsets[docs], lo) - lo
            mins = np.minimum.reduceat(chunk, starts, axis=0)
            result[docs] = np.minimum(result[docs], mins)
    return result


def signatures(texts: pa.Array, spec: MinHashSpec) -> pa.Array:
    """One binary signature per text (null for texts without a token)."""
    stream = tokenize(texts, spec.norm, spec.tokenization)
    hashes, offsets = fold_hashes(stream, spec.ngram)
    matrix = _signature_matrix(hashes, offsets, spec.num_perm, spec.seed)
    return to_binary(matrix, np.diff(offsets) > 0)


def to_binary(matrix: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Rows of a uint32 matrix as a binary column (little-endian), null where not `valid`."""
    n, width = matrix.shape
    data = np.ascontiguousarray(matrix, dtype="<u4")
    offsets = np.arange(n + 1, dtype=np.int32) * (width * 4)
    validity = pa.array(valid, type=pa.bool_()).buffers()[1] if not valid.all() else None
    return pa.Array.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=int((~valid).sum())
    )


def from_binary(column: pa.Array, num_perm: int) -> np.ndarray:
    """A binary signature column (no nulls) back to a (rows x num_perm) uint32 matrix, without copying."""
    column = column.cast(pa.binary())
    width = 4 * num_perm
    lengths = pc.binary_length(column)
    if column.null_count or (len(column) and pc.min_max(lengths).as_py() != {"min": width, "max": width}):
        raise ValueError(
            f"minhash signatures must be {width} bytes ({num_perm} permutations) and not null; "
            "they were made with another num_perm: recompute them (drop the minhash column) or match num_perm"
        )
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[
        column.offset : column.offset + len(column) + 1
    ]
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.view("<u4").reshape(len(column), num_perm)


def band_keys(matrix: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents x bands) int64 keys: a 64-bit fold of each band's `rows` values and its index.

    Two documents share a key exactly when the band's values are equal (up to a
    2^-64 chance of a fold collision), which is datasketch's band test.
    """
    keys = np.empty((matrix.shape[0], bands), dtype=np.uint64)
    values = matrix.astype(np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(matrix.shape[0], np.uint64(band) * _BAND_MUL + np.uint64(1), dtype=np.uint64)
            for col in range(band * rows, (band + 1) * rows):
                acc = (acc ^ values[:, col]) * _BAND_MUL
                acc ^= acc >> np.uint64(29)
            keys[:, band] = acc
    return keys.view(np.int64)


def estimated_jaccard(left: bytes, right: bytes) -> float:
    """Fraction of equal signature positions: the MinHash estimate of Jaccard similarity."""
    a = np.frombuffer(left, dtype="<u4")
    b = np.frombuffer(right, dtype="<u4")
    return float(np.mean(a == b))


def minhash_column(
    batch: pa.RecordBatch, spec: MinHashSpec | None = None, text_column: str = "text"
) -> pa.Array:
    """Batch -> signature column: what annotate's `minhash` annotator adds in its single text scan."""
    return signatures(batch.column(text_column), spec or MinHashSpec())


SIGNATURE_FIELD = pa.field("minhash", pa.binary())


def add_signatures(
    batch: pa.RecordBatch, spec: MinHashSpec, text_column: str = "text", out_column: str = "minhash"
) -> pa.RecordBatch:
    """Append (or replace) the signature column of a batch."""
    column = signatures(batch.column(text_column), spec)
    names = [n for n in batch.schema.names if n != out_column]
    return pa.RecordBatch.from_arrays([batch.column(n) for n in names] + [column], names=[*names, out_column])
