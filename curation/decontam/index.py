"""Benchmark decontamination: word n-gram overlap between documents and evaluation sets.

Text on both sides is normalised the same way (lower case, words = runs of
letters and digits, so punctuation and formatting differences do not hide a
copy) and every window of `n` consecutive words (13 by default, as in GPT-3's
and the Pile's decontamination) is hashed to 64 bits. A document is contaminated
when it shares at least `min_matches` n-grams with a benchmark; the benchmark
with the most shared n-grams is recorded. Benchmark items shorter than `n` words
cannot be matched this way and are counted as `short_items` in the index stats.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import xxhash

from pipelines.ingest.readers.compressed import STREAM_ERRORS, open_maybe_compressed
from pipelines.ingest.readers.jsonl import JsonLinesError, json_lines

DEFAULT_FIELDS = ("question", "prompt", "problem", "query", "input", "text", "context")
GENERIC_STEMS = {"test", "train", "validation", "valid", "dev", "data", "eval"}
WORD = re.compile(r"\w+")
MASK63 = (1 << 63) - 1

DECONTAM_FIELDS: list[pa.Field] = [
    pa.field("contamination_ngrams", pa.int64()),
    pa.field("contamination_benchmark", pa.string()),
]


class BenchmarkFileError(ValueError):
    """A benchmark file could not be read; the message names the file and line."""


def normalized_words(text: str | None) -> list[str]:
    return WORD.findall((text or "").lower())


def ngram_hashes(text: str | None, n: int) -> list[int]:
    """Non-negative 63-bit hashes of every n-word window (fits Spark's signed long)."""
    words = normalized_words(text)
    hash_ = xxhash.xxh3_64_intdigest
    return [hash_(" ".join(words[i : i + n]).encode()) & MASK63 for i in range(len(words) - n + 1)]


def benchmark_name(path: Path) -> str:
    """A readable name: the file stem, with its folder when the stem is generic (gsm8k/test)."""
    stem = path.name
    for suffix in (".gz", ".jsonl", ".json", ".csv"):
        stem = stem.removesuffix(suffix)
    return f"{path.parent.name}/{stem}" if stem.lower() in GENERIC_STEMS else stem


def _csv_records(path: Path) -> Iterator[dict]:
    with io.TextIOWrapper(open_maybe_compressed(str(path)), encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            yield from reader
        except (UnicodeDecodeError, csv.Error, *STREAM_ERRORS) as exc:
            raise BenchmarkFileError(f"{path}:{reader.line_num + 1}: cannot be read ({exc})") from None


def _jsonl_records(path: Path) -> Iterator[dict]:
    try:
        for _, record in json_lines(path):
            yield record
    except JsonLinesError as exc:
        raise BenchmarkFileError(str(exc)) from None


def read_items(path: Path, fields: Sequence[str] | None = None) -> Iterator[str]:
    """The texts to protect in one benchmark file (JSONL or CSV, optionally gzipped).

    Every listed field present in a record yields one text; with `fields` unset,
    the usual question/prompt field names are tried.
    """
    wanted = tuple(fields or DEFAULT_FIELDS)
    if not path.is_file():
        raise BenchmarkFileError(f"benchmark file {path} does not exist")
    records: Iterable[dict] = _csv_records(path) if ".csv" in path.suffixes else _jsonl_records(path)
    found = False
    for record in records:
        for name in wanted:
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                found = True
                yield value
    if not found:
        raise BenchmarkFileError(
            f"benchmark file {path} has no non-empty field among {list(wanted)}; set `fields` to its question field(s)"
        )


@dataclass
class BenchmarkSpec:
    path: Path
    name: str | None = None
    fields: Sequence[str] | None = None


@dataclass
class DecontamIndex:
    """n-gram hash -> benchmark name, with per-benchmark counts for the run record."""

    n: int
    ngrams: dict[int, str] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def build(cls, specs: Sequence[BenchmarkSpec], n: int = 13) -> DecontamIndex:
        index = cls(n=n)
        for spec in specs:
            name = spec.name or benchmark_name(Path(spec.path))
            items = short = 0
            for text in read_items(Path(spec.path), spec.fields):
                items += 1
                hashes = ngram_hashes(text, n)
                short += not hashes
                for h in hashes:
                    index.ngrams.setdefault(h, name)
            index.stats[name] = {"items": items, "short_items": short}
        return index

    def match(self, text: str | None) -> tuple[int, str | None]:
        """(matched n-grams, benchmark with the most matches) for one document."""
        hits = Counter(self.ngrams[h] for h in ngram_hashes(text, self.n) if h in self.ngrams)
        if not hits:
            return 0, None
        name, _ = hits.most_common(1)[0]
        return sum(hits.values()), name

    def arrays(self, texts: Sequence[str | None]) -> list[pa.Array]:
        """The `contamination_ngrams` and `contamination_benchmark` columns for a batch."""
        matches = [self.match(t) for t in texts]
        return [
            pa.array([m[0] for m in matches], pa.int64()),
            pa.array([m[1] for m in matches], pa.string()),
        ]

    def table(self) -> pa.Table:
        """The index as rows (ngram, benchmark), for the Spark join used when it is too big to broadcast."""
        return pa.table(
            {
                "ngram": pa.array(list(self.ngrams.keys()), pa.int64()),
                "benchmark": pa.array(list(self.ngrams.values()), pa.string()),
            }
        )
