"""Hostile compressed input to the readers (no Spark): compression bombs of every codec, files that
compress well without being bombs, the configurable ratio, read time linear in the data, and a cut
stream. Every file is built by the test."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import random
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from pipelines.ingest.readers.base import read_bounded_lines
from pipelines.ingest.readers.compressed import (
    BOMB_FLOOR_BYTES,
    CompressionBomb,
    inflate_limit,
    open_maybe_compressed,
)
from tests.pipelines.hostile_files import MB, PAGE, bomb_line, read, reasons, repeated_members


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".gz", lambda b: gzip.compress(b, 9)),
        (".zst", lambda b: zstandard.ZstdCompressor(level=19).compress(b)),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
    ],
)
def test_compression_bomb_stops_early_in_bounded_memory(tmp_path: Path, suffix: str, compress):
    """A line of gigabytes from a file of 1-3 MB: quarantined as `compression_bomb` after inflating
    at most the limit, with memory bounded by max_doc_bytes, and the file not read to its end."""
    path = tmp_path / f"bomb.jsonl{suffix}"
    repeated_members(path, compress, bomb_line(), 100, min_size=MB)
    size = path.stat().st_size
    assert size < 3 * MB
    tracemalloc.start()
    rows = read(path, "jsonl", max_doc_bytes=MB)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [r["reason"] for r in rows] == ["compression_bomb"]
    # max_doc_bytes + read buffers (+ the 8 MB dictionary xz's decoder allocates), not gigabytes.
    assert peak < (16 if suffix == ".xz" else 8) * MB, peak

    stream = open_maybe_compressed(str(path))
    with pytest.raises(CompressionBomb):
        while stream.read(MB):
            pass
    raw = stream.raw
    assert raw.produced <= inflate_limit(size, 500) + MB  # stopped at the limit
    assert raw.compressed_read < size  # the rest of the file was never read


def test_small_but_very_compressible_file_is_not_a_bomb(tmp_path: Path):
    """Below BOMB_FLOOR_BYTES no ratio counts: a 10 MB file of one repeated line is read whole."""
    line = b'{"text": "' + b"same boilerplate line. " * 40 + b'"}\n'
    path = tmp_path / "same.jsonl.gz"
    path.write_bytes(gzip.compress(line * (10 * MB // len(line))))
    assert 10 * MB < BOMB_FLOOR_BYTES
    rows = read(path, "jsonl")
    assert len(rows) == 10 * MB // len(line)
    assert {r["kind"] for r in rows} == {"document"}


def test_ratio_is_configurable(tmp_path: Path):
    """80 MB of boilerplate at about 200x: read whole at the default ratio (500), a bomb at 50
    once past the 64 MB floor, with the lines before that point kept."""
    rng = random.Random(1)
    words = ["the", "of", "cookie", "policy", "site", "page", "news", "market", "data", "people"]
    line = json.dumps({"text": " ".join(rng.choice(words) for _ in range(150))}).encode() + b"\n"
    path = tmp_path / "boilerplate.jsonl.gz"
    repeated_members(path, gzip.compress, line * (8 * MB // len(line)), 10)
    lines = 10 * (8 * MB // len(line))
    rows = read(path, "jsonl")
    assert Counter(r["kind"] for r in rows) == Counter({"document": lines})
    strict = read(path, "jsonl", max_compression_ratio=50)
    assert reasons(strict) == Counter({"compression_bomb": 1})
    kept = sum(r["kind"] == "document" for r in strict)
    # The rows before it are kept (less what the 1 MB read-ahead had inflated but not handed out).
    assert (BOMB_FLOOR_BYTES - 2 * MB) // len(line) <= kept < lines


def _best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_repetitive_100mb_gzip_reads_in_linear_time_relative_to_gzip_open(tmp_path: Path):
    """100 MB of boilerplate JSONL (about 200x compression), line by line: the bounded reader
    against `gzip.open` on the same file. The old reader sliced its buffer on every read and was
    24x slower; a ratio, generous for a noisy machine, not an absolute time."""
    line = json.dumps({"text": "Cookie policy. We use cookies to improve your experience. " * 4}).encode()
    path = tmp_path / "boilerplate.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write((line + b"\n") * (100_000_000 // (len(line) + 1)))

    def ours() -> None:
        with open_maybe_compressed(str(path)) as stream:
            for _ in read_bounded_lines(stream, 10_000_000):
                pass

    def reference() -> None:
        with gzip.open(path, "rb") as fh:
            for _ in fh:
                pass

    ratio = _best_of(2, ours) / _best_of(2, reference)
    assert ratio < 4, ratio


def test_one_huge_line_in_a_gzip_is_linear_too(tmp_path: Path):
    """A single 200 MB line (the bomb shape, below the ratio limit): skipped as oversize at the
    cost of inflating it once, relative to `gzip.open` reading the same bytes."""
    path = tmp_path / "line.jsonl.gz"
    repeated_members(path, gzip.compress, b"b" * (20 * MB), 10)
    with open(path, "ab") as fh:
        fh.write(gzip.compress(b'\n{"text": "after"}\n'))

    def ours() -> list[dict]:
        return read(path, "jsonl", max_doc_bytes=MB, max_compression_ratio=1e9)

    def reference() -> None:
        with gzip.open(path, "rb") as fh:
            while fh.read(MB):
                pass

    rows = ours()
    assert [(r["kind"], r.get("reason")) for r in rows] == [("quarantine", "oversize"), ("document", None)]
    ratio = _best_of(2, ours) / _best_of(2, reference)
    assert ratio < 4, ratio


def test_cut_compressed_page_is_truncated_stream(tmp_path: Path):
    path = tmp_path / "page.html.gz"
    path.write_bytes(gzip.compress(PAGE * 50)[:-40])
    assert reasons(read(path, "html")) == Counter({"truncated_stream": 1})


SAMPLE = Path(__file__).resolve().parents[2] / "samples/jsonl/redpajama-cc-2023-06-refined.jsonl"
ZSTD_SKIPPABLE = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"notes"


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".gz", gzip.compress),
        (".zst", lambda b: zstandard.ZstdCompressor(level=3, write_checksum=True).compress(b)),
        (".zst", lambda b: zstandard.ZstdCompressor(level=19, write_content_size=False).compress(b)),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
    ],
)
def test_a_cut_jsonl_keeps_the_lines_before_the_cut_and_says_so(tmp_path: Path, suffix: str, compress):
    """Every codec, zstd included (its decoder ends quietly inside a cut frame): the lines before the
    cut are documents, the cut is one `truncated_stream` row, nothing is silently short."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    whole = compress(b"".join(lines))
    for cut in (len(whole) // 2, len(whole) - 3):
        path = tmp_path / f"cut{cut}.jsonl{suffix}"
        path.write_bytes(whole[:cut])
        rows = read(path, "jsonl")
        documents = [r for r in rows if r["kind"] == "document"]
        assert reasons(rows) == Counter({"truncated_stream": 1}), (suffix, cut)
        assert len(documents) <= len(lines)  # a cut in a trailer loses no line; zstd yields whole blocks
    path = tmp_path / f"whole.jsonl{suffix}"
    path.write_bytes(whole + (ZSTD_SKIPPABLE + whole if suffix == ".zst" else b""))
    rows = read(path, "jsonl")
    assert not reasons(rows) and len(rows) == len(lines) * (2 if suffix == ".zst" else 1)
