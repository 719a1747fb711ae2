"""Hostile Parquet input to the reader (no Spark): oversize text, a footer that declares a blow-up,
dictionary bombs and oversize dictionary values in bounded memory, and ordinary files read exactly as
a plain read. Every file is built by the test."""

from __future__ import annotations

import os
import tracemalloc
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.ingest.readers import read_file
from pipelines.ingest.readers.base import EXCERPT_CHARS, FileTask
from pipelines.ingest.readers.compressed import BOMB_FLOOR_BYTES, DEFAULT_MAX_COMPRESSION_RATIO
from pipelines.ingest.readers.jsonl import JsonlOptions, record_to_row
from tests.pipelines.hostile_files import MB, read


def test_parquet_text_over_max_doc_bytes_is_oversize(tmp_path: Path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": ["short", "x" * (2 * MB)]}), path)
    rows = read(path, "parquet", max_doc_bytes=MB)
    assert [(r["kind"], r.get("reason")) for r in rows] == [("document", None), ("quarantine", "oversize")]


def test_parquet_whose_metadata_declares_a_blow_up_is_one_bomb_row_nothing_decoded(tmp_path: Path):
    """80 MB of plain-encoded text compressed to a few kilobytes: the footer says so, and the file is
    one `compression_bomb` row before a page is decoded (80 MB never reaches Python)."""
    path = tmp_path / "declared.parquet"
    pq.write_table(pa.table({"text": ["a" * MB] * 80}), path, compression="zstd", use_dictionary=False)
    assert os.path.getsize(path) * DEFAULT_MAX_COMPRESSION_RATIO < BOMB_FLOOR_BYTES < 80 * MB
    tracemalloc.start()
    rows = read(path, "parquet")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(r["reason"], r["locator"]) for r in rows] == [("compression_bomb", "declared.parquet:0")]
    assert "declares" in rows[0]["excerpt"]
    assert peak < 8 * MB, peak
    # The ratio still decides: a lenient one reads the same file whole.
    lenient = read(path, "parquet", max_compression_ratio=1e6)
    assert [r["kind"] for r in lenient] == ["document"] * 80


def test_parquet_dictionary_bomb_is_cut_in_bounded_memory(tmp_path: Path):
    """One 1 MB dictionary value named by 400 rows: a 2 KB file whose metadata declares about 1 MB
    but that decodes to 400 MB. Rows are decoded one at a time and the rest of the file is one
    `compression_bomb` row at the 64 MB floor; the old reader held all 400 MB at once."""
    path = tmp_path / "dict.parquet"
    text = pa.DictionaryArray.from_arrays(pa.array([0] * 400, pa.int32()), pa.array(["v" * MB]))
    pq.write_table(
        pa.table({"text": text, "n": list(range(400))}),
        path,
        compression="zstd",
        dictionary_pagesize_limit=4 * MB,
    )
    meta = pq.ParquetFile(path).metadata
    assert "RLE_DICTIONARY" in meta.row_group(0).column(0).encodings
    assert meta.row_group(0).total_byte_size < 2 * MB  # the footer does not give it away
    tracemalloc.start()
    # Only the shape of each row is kept, so the memory measured is the reader's own.
    seen = [
        (r["kind"], r.get("reason"), r["locator"], len(r["text"]) if "text" in r else r["excerpt"])
        for r in read_file(FileTask("test", str(path), "dict.parquet", "parquet"))
    ]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * MB, peak
    documents = [s for s in seen if s[0] == "document"]
    cut = len(documents)
    assert 60 <= cut <= 64  # 64 MB of text, less the other column's bytes
    assert [s[2] for s in documents] == [f"dict.parquet:{i}" for i in range(cut)]
    assert all(s[3] == MB for s in documents)
    # Counts reconcile: the kept rows, then one row standing for rows cut..399, which it names.
    bomb = f"decoded past {BOMB_FLOOR_BYTES} bytes at row {cut} of 400"
    assert seen[cut:] == [("quarantine", "compression_bomb", f"dict.parquet:{cut}", bomb)]


def test_parquet_oversize_dictionary_value_is_never_decoded_whole(tmp_path: Path):
    """A 20 MB value named by three rows: three `oversize` rows with excerpts, and Python never
    holds the value (the old reader decoded all 60 MB first)."""
    path = tmp_path / "big.parquet"
    text = pa.DictionaryArray.from_arrays(pa.array([0, 0, 0], pa.int32()), pa.array(["é" + "w" * (20 * MB)]))
    pq.write_table(pa.table({"text": text}), path, compression="zstd", dictionary_pagesize_limit=32 * MB)
    tracemalloc.start()
    seen = [
        (r["reason"], r["excerpt"])
        for r in read_file(FileTask("test", str(path), "big.parquet", "parquet", max_doc_bytes=MB))
    ]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seen == [("oversize", "é" + "w" * (EXCERPT_CHARS - 1))] * 3
    assert peak < 8 * MB, peak


def test_ordinary_parquet_rows_are_those_of_a_plain_read(tmp_path: Path):
    """Reading string columns as dictionaries changes nothing for an ordinary file: the rows are the
    ones a plain `to_pylist` of the table gives (ids, meta, text, quarantine rows alike)."""
    path = tmp_path / "docs.parquet"
    table = pa.table(
        {
            "text": ["first", None, "", "é" * 10, "plain " * 40, "x" * 300],
            "url": ["https://a.example/", None, "u", "", "b", "c"],
            "id": [1, 2, 3, None, 5, 6],
            "tags": [["a"], [], None, ["b", "c"], ["d"], []],
            "blob": [b"\x00", None, b"", b"x", b"y", b"z"],
            "lang": pa.array(["en"] * 6, pa.large_string()),
        }
    )
    pq.write_table(table, path)
    task = FileTask(
        "test", str(path), "docs.parquet", "parquet", options={"id_field": "id"}, max_doc_bytes=299
    )
    opts = JsonlOptions(id_field="id")
    expected = [record_to_row(task, opts, i, row, repr(row)[:400]) for i, row in enumerate(table.to_pylist())]
    rows = list(read_file(task))
    assert rows == expected
    assert Counter((r["kind"], r.get("reason")) for r in rows) == Counter(
        {
            ("document", None): 3,
            ("quarantine", "missing_text_field"): 1,
            ("quarantine", "empty_text"): 1,
            ("quarantine", "oversize"): 1,
        }
    )
