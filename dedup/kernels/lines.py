"""Repeated-line removal (CCNet-style boilerplate): line hashes, and lines removed by hash.

A line is normalized like a shingle (lowercase, digits -> 0, punctuation and
accents removed, whitespace collapsed) so that "Copyright 2019 Foo." and
"copyright 2021 foo" count as one line. Lines that normalize to nothing (blank
lines, rules of dashes) are never counted nor removed. Hashing goes through the
batch's distinct lines (Arrow dictionary), because boilerplate repeats.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from dedup.kernels.shingles import TextNorm

_NORM = TextNorm()


def _line_table(texts: pa.Array) -> tuple[pa.ListArray, np.ndarray]:
    """Each text split into lines, and every line's int64 hash (0 for lines that normalize to nothing)."""
    lines = pc.split_pattern(pc.fill_null(texts.cast(pa.large_string()), ""), "\n")
    encoded = pc.dictionary_encode(lines.flatten())
    normalized = pc.utf8_trim_whitespace(
        pc.replace_substring_regex(_NORM.apply(encoded.dictionary), r"\s+", " ")
    )
    raw = normalized.cast(pa.large_binary()).to_pylist()
    distinct = np.fromiter(
        (xxhash.xxh3_64_intdigest(v) | 1 if v else 0 for v in raw), dtype=np.uint64, count=len(raw)
    ).view(np.int64)
    return lines, distinct[encoded.indices.to_numpy(zero_copy_only=False)]


def line_hashes(texts: pa.Array) -> pa.Array:
    """Per text, the distinct hashes of its non-empty normalized lines (list<int64>)."""
    lines, hashes = _line_table(texts)
    offsets = lines.offsets.to_numpy()
    out = []
    for d in range(len(lines)):
        h = hashes[offsets[d] : offsets[d + 1]]
        out.append(np.unique(h[h != 0]))
    return pa.array(out, type=pa.list_(pa.int64()))


def remove_lines(texts: pa.Array, remove: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Texts without the lines whose hash is in that row's `remove` list, and how many lines went.

    Rows whose `remove` list is null or empty come back unchanged.
    """
    lines, hashes = _line_table(texts)
    offsets = lines.offsets.to_numpy()
    removals = remove.to_pylist()
    flat_lines = lines.flatten()
    out_text, out_count = [], []
    for d, drop in enumerate(removals):
        if not drop or not texts[d].is_valid:
            out_text.append(texts[d].as_py())
            out_count.append(0)
            continue
        lo, hi = offsets[d], offsets[d + 1]
        keep = ~np.isin(hashes[lo:hi], np.asarray(drop, dtype=np.int64))
        kept = flat_lines.slice(lo, hi - lo).filter(pa.array(keep)).to_pylist()
        out_text.append("\n".join(kept))
        out_count.append(int((~keep).sum()))
    return pa.array(out_text, type=pa.string()), pa.array(out_count, type=pa.int32())


def line_hash_column(batch: pa.RecordBatch, text_column: str) -> pa.Array:
    """`line_hashes` of a batch's text column: the form `append_column` takes."""
    return line_hashes(batch.column(text_column))


def strip_lines(batch: pa.RecordBatch, text_column: str) -> pa.RecordBatch:
    """The batch with its repeated lines cut (their hashes in `_remove`), and `lines_removed` counted.

    The text column and the count go last, `_remove` goes (the shape `line_dedup` declares).
    """
    new_text, counts = remove_lines(batch.column(text_column), batch.column("_remove"))
    names = [n for n in batch.schema.names if n not in (text_column, "_remove", "lines_removed")]
    return pa.RecordBatch.from_arrays(
        [batch.column(n) for n in names] + [new_text, counts], names=[*names, text_column, "lines_removed"]
    )
