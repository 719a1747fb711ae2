"""Exact-duplicate keys: a hash of normalized text (no Spark here; the stage groups by it).

Normalization is what makes "exact" useful on web text: the same page fetched
twice differs in trailing spaces, line endings or case. Each step is a switch so
that a user can ask for byte-exact matching (all off) or for data-juicer's
`ignore_non_character` (letters only: punctuation, digits and spaces removed).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

_NON_CHARACTER = r"[\p{P}\p{S}\p{N}\p{Z}\p{C}\s]+"


@dataclass(frozen=True)
class ExactNorm:
    """Normalizations applied before hashing (the first three on by default)."""

    nfc: bool = True
    collapse_whitespace: bool = True
    casefold: bool = True
    letters_only: bool = False

    def apply(self, values: pa.Array) -> pa.Array:
        if self.nfc:
            values = pc.utf8_normalize(values, "NFC")
        if self.casefold:
            values = pc.utf8_lower(values)
        if self.letters_only:
            values = pc.replace_substring_regex(values, _NON_CHARACTER, "")
        elif self.collapse_whitespace:
            values = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"\s+", " "))
        return values


def exact_hashes(values: pa.Array, norm: ExactNorm) -> pa.Array:
    """128-bit xxh3 hex digest of each normalized value; null stays null (and matches nothing)."""
    normalized = norm.apply(values.cast(pa.large_string())).cast(pa.large_binary()).to_pylist()
    digests = [None if v is None else xxhash.xxh3_128_hexdigest(v) for v in normalized]
    return pa.array(digests, type=pa.string())


def exact_hash_column(batch: pa.RecordBatch, column: str, norm: ExactNorm) -> pa.Array:
    """`exact_hashes` of one column of a batch: the form `append_column` takes."""
    return exact_hashes(batch.column(column), norm)
