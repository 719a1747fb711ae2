"""Text normalization and n-gram shingle hashes over whole Arrow columns.

FineWeb-style normalization (lowercase, digit runs -> "0", punctuation, symbols and
control characters -> space, Unicode NFD with combining marks removed) makes near
duplicates that differ in case, numbers or accents share shingles.

Why the work is done on a batch's *vocabulary* rather than on its text: web text
is Zipfian, so a batch of a few thousand documents has 5-20x fewer distinct
whitespace tokens than tokens. Tokens are dictionary-encoded in Arrow (C++),
only the distinct ones are normalized and hashed, and the per-token hashes are
gathered back with numpy. A shingle's hash is then a numpy fold of its tokens'
64-bit hashes (`fold_hashes`), so no Python call is made per shingle.

`shingle_hash` computes the same 32-bit value from a shingle's bytes, which is
what lets datasketch's `MinHash(hashfunc=shingle_hash)` reproduce our signatures
bit for bit (the test of record for the kernel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

Tokenization = Literal["words", "chars"]

_NUMBERS = r"\p{Nd}+(?:[.,]\p{Nd}+)?"
_PUNCTUATION = r"[\p{P}\p{S}\p{Cc}\p{Cf}]+"
_MARKS = r"\p{Mn}+"

_FOLD_SEED = np.uint64(0x9E3779B97F4A7C15)
_FOLD_MUL = np.uint64(0xFF51AFD7ED558CCD)
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class TextNorm:
    """Which FineWeb-style normalizations apply before tokenization (all on by default)."""

    lowercase: bool = True
    numbers: bool = True
    punctuation: bool = True
    diacritics: bool = True

    def apply(self, values: pa.Array) -> pa.Array:
        """Normalize a string column (used on a batch's vocabulary, or on whole texts)."""
        if self.lowercase:
            values = pc.utf8_lower(values)
        if self.numbers:
            values = pc.replace_substring_regex(values, _NUMBERS, "0")
        if self.punctuation:
            values = pc.replace_substring_regex(values, _PUNCTUATION, " ")
        if self.diacritics:
            values = pc.replace_substring_regex(pc.utf8_normalize(values, "NFD"), _MARKS, "")
        return values


@dataclass
class TokenStream:
    """Every document's tokens as 64-bit hashes, concatenated; `offsets[d]:offsets[d+1]` is document d."""

    hashes: np.ndarray
    offsets: np.ndarray


def _expand(ids: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For each id, the run `starts[id] .. starts[id] + counts[id]`, all runs concatenated."""
    lengths = counts[ids]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    run_starts = np.repeat(starts[ids] - np.cumsum(lengths) + lengths, lengths)
    return run_starts + np.arange(total, dtype=np.int64)


def _hash_strings(values: pa.Array) -> np.ndarray:
    """xxh3-64 of each string's UTF-8 bytes (one C call per distinct token)."""
    raw = values.cast(pa.large_binary()).to_pylist()
    return np.fromiter(map(xxhash.xxh3_64_intdigest, raw), dtype=np.uint64, count=len(raw))


def _doc_offsets(per_token_doc_counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(per_token_doc_counts) + 1, dtype=np.int64)
    np.cumsum(per_token_doc_counts, out=offsets[1:])
    return offsets


def _pieces(normalized: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Each normalized vocabulary entry's non-empty whitespace pieces, flattened, with per-entry offsets.

    Arrow's split yields "" for empty input and around leading/trailing spaces;
    those are dropped so that they never become tokens.
    """
    pieces = pc.utf8_split_whitespace(normalized)
    values = pieces.flatten()
    keep = pc.greater(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    cumulative = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=cumulative[1:])
    offsets = cumulative[pieces.offsets.to_numpy().astype(np.int64)]
    return values.filter(pa.array(keep)), offsets


def _normalized_tokens(texts: pa.Array, norm: TextNorm) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(distinct normalized tokens, index of each token occurrence into them, per-document offsets)."""
    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    raw = pc.utf8_split_whitespace(texts)
    raw_offsets = raw.offsets.to_numpy().astype(np.int64)
    encoded = pc.dictionary_encode(raw.flatten())
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # Normalizing can split a raw token ("e-mail" -> "e mail") or empty it ("--").
    piece_values, piece_offsets = _pieces(norm.apply(encoded.dictionary))
    token_index = _expand(ids, piece_offsets[:-1], np.diff(piece_offsets))
    cumulative = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(np.diff(piece_offsets)[ids], out=cumulative[1:])
    per_doc = cumulative[raw_offsets[1:]] - cumulative[raw_offsets[:-1]]
    return piece_values, token_index, _doc_offsets(per_doc)


def tokenize(texts: pa.Array, norm: TextNorm, tokenization: Tokenization = "words") -> TokenStream:
    """Normalize and tokenize a string column into token hashes; nulls become empty documents."""
    values, token_index, offsets = _normalized_tokens(texts, norm)
    if tokenization == "words":
        return TokenStream(_hash_strings(values)[token_index], offsets)
    chars = _character_lists(values, token_index, offsets)
    encoded = pc.dictionary_encode(chars.flatten())
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return TokenStream(_hash_strings(encoded.dictionary)[ids], chars.offsets.to_numpy().astype(np.int64))


def _character_lists(values: pa.Array, token_index: np.ndarray, offsets: np.ndarray) -> pa.LargeListArray:
    """Per document, its normalized words concatenated and cut into code points (CJK-style tokens)."""
    words = values.take(pa.array(token_index, type=pa.int64()))
    docs = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), words)
    joined = pc.binary_join(docs, pa.scalar("", pa.large_string())).to_pylist()
    return pa.array([list(doc) for doc in joined], type=pa.large_list(pa.large_string()))


def _mix(acc: np.ndarray, value: np.ndarray) -> np.ndarray:
    acc = (acc ^ value) * _FOLD_MUL
    return acc ^ (acc >> np.uint64(32))


def fold_hashes(stream: TokenStream, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every document's token n-grams, concatenated, and their per-document offsets.

    A document with fewer than `ngram` tokens has one shingle (all its tokens),
    so short texts can still be matched; an empty one has none. Windows are folded
    at every token position with shifted views (no gathers), then the ones that
    lie inside a document are selected.
    """
    lengths = np.diff(stream.offsets)
    windows = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    shingle_offsets = _doc_offsets(windows)
    total = int(windows.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint32), shingle_offsets
    doc_of = np.repeat(np.arange(len(lengths)), windows)
    starts = stream.offsets[:-1][doc_of] + (np.arange(total) - shingle_offsets[:-1][doc_of])
    folded = np.zeros(total, dtype=np.uint64)
    full = lengths[doc_of] >= ngram
    with np.errstate(over="ignore"):
        positions = len(stream.hashes) - ngram + 1
        if positions > 0 and full.any():
            acc = np.full(positions, _FOLD_SEED, dtype=np.uint64)
            for k in range(ngram):
                acc = _mix(acc, stream.hashes[k : k + positions])
            folded[full] = acc[starts[full]]
        short = np.flatnonzero(~full)
        if len(short):
            widths = lengths[doc_of[short]]
            acc = np.full(len(short), _FOLD_SEED, dtype=np.uint64)
            for k in range(int(widths.max())):
                inside = widths > k
                mixed = _mix(acc, stream.hashes[np.where(inside, starts[short] + k, 0)])
                acc = np.where(inside, mixed, acc)
            folded[short] = acc
    return (folded >> np.uint64(32)).astype(np.uint32), shingle_offsets


def shingle_hash(shingle: bytes, tokenization: Tokenization = "words") -> int:
    """The 32-bit hash of one shingle as `shingle_strings` spells it (scalar twin of `fold_hashes`)."""
    text = shingle.decode("utf-8")
    tokens = text.split(" ") if tokenization == "words" else list(text)
    acc = int(_FOLD_SEED)
    for token in tokens:
        acc = ((acc ^ xxhash.xxh3_64_intdigest(token.encode("utf-8"))) * int(_FOLD_MUL)) & _MASK64
        acc ^= acc >> 32
    return acc >> 32


def shingle_lists(
    texts: pa.Array, ngram: int, norm: TextNorm, tokenization: Tokenization = "words"
) -> list[list[bytes]]:
    """Every document's shingles as bytes, in order: the input a reference MinHash (datasketch) needs."""
    values, token_index, offsets = _normalized_tokens(texts, norm)
    if tokenization == "words":
        tokens = values.take(pa.array(token_index, type=pa.int64())).to_pylist()
        docs = [tokens[offsets[d] : offsets[d + 1]] for d in range(len(offsets) - 1)]
    else:
        docs = _character_lists(values, token_index, offsets).to_pylist()
    sep = " " if tokenization == "words" else ""
    out = []
    for doc in docs:
        if len(doc) < ngram:
            out.append([sep.join(doc).encode("utf-8")] if doc else [])
        else:
            out.append([sep.join(doc[i : i + ngram]).encode("utf-8") for i in range(len(doc) - ngram + 1)])
    return out
