"""Hostile input to the readers (no Spark): compression bombs, huge repetitive files, binary
files posing as text, names that are not UTF-8, surrogates in JSON, and WARCs full of records
nobody wants. Every file is built by the test."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import random
import time
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

import brotli
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.ingest.readers import CAPPED, MAX_QUARANTINE_ROWS, read_file
from pipelines.ingest.readers.base import EXCERPT_CHARS, FileTask, read_bounded_lines
from pipelines.ingest.readers.compressed import (
    BOMB_FLOOR_BYTES,
    DEFAULT_MAX_COMPRESSION_RATIO,
    CompressionBomb,
    decode_body,
    inflate_limit,
    open_maybe_compressed,
)
from pipelines.ingest.readers.images import MAX_CAPTION_CHARS
from pipelines.ingest.readers.jsonl import JsonlOptions, record_to_row
from pipelines.ingest.readers.schema import RECORD_SCHEMA, to_batches

MB = 1 << 20


def read(path: Path, fmt: str, **kwargs) -> list[dict]:
    relpath = os.fsdecode(os.path.basename(os.fsencode(path)))
    return list(read_file(FileTask("test", str(path), relpath, fmt, **kwargs)))


def reasons(rows: list[dict]) -> Counter:
    return Counter(r["reason"] for r in rows if r["kind"] == "quarantine")


def repeated_members(path: Path, compress, member_bytes: bytes, copies: int, min_size: int = 0) -> None:
    """A bomb built cheaply: one compressed member (gzip member, zstd frame ...) repeated, at least
    `copies` times and until the file holds `min_size` bytes."""
    member = compress(member_bytes)
    copies = max(copies, -(-min_size // len(member)))
    with open(path, "wb") as fh:
        for _ in range(copies):
            fh.write(member)


def bomb_line() -> bytes:
    return b'{"text": "' + b"a" * (16 * MB)


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


def test_binary_file_named_jsonl_is_one_row(tmp_path: Path):
    rng = random.Random(7)
    path = tmp_path / "photo.jsonl"
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(200_000)))
    rows = read(path, "jsonl")
    assert [(r["kind"], r["reason"]) for r in rows] == [("quarantine", "binary_file")]
    html = tmp_path / "page.html"
    html.write_bytes(path.read_bytes())
    assert reasons(read(html, "html")) == Counter({"binary_file": 1})


def test_cut_compressed_page_is_truncated_stream(tmp_path: Path):
    path = tmp_path / "page.html.gz"
    path.write_bytes(gzip.compress(PAGE * 50)[:-40])
    assert reasons(read(path, "html")) == Counter({"truncated_stream": 1})


def test_utf16_text_with_bom_is_not_binary(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Grüße aus Köln, a plain text note.\n".encode("utf-16"))
    rows = read(path, "text")
    assert [r["kind"] for r in rows] == ["document"]
    assert "Köln" in rows[0]["text"]


def test_quarantine_is_capped_per_file_and_counts_reconcile(tmp_path: Path):
    """Text first, then 416 lines of garbage: 100 quarantine rows, one summary row, the rest
    counted per reason; documents + quarantine rows - summary + folded = the file's lines."""
    good = [json.dumps({"text": f"line {i}"}).encode() for i in range(300)]
    rng = random.Random(3)
    bad = [b"{not json " + bytes(rng.choice(b"abc:{}[]") for _ in range(40)) for _ in range(400)]
    bad += [b"[1, 2]"] * 16
    lines = good + bad
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = read(path, "jsonl")
    quarantine = [r for r in rows if r["kind"] == "quarantine"]
    assert len(quarantine) == MAX_QUARANTINE_ROWS + 1
    assert quarantine[-1]["reason"] == CAPPED
    assert "316 more not written" in quarantine[-1]["excerpt"]
    folded = {r["reason"]: json.loads(r["meta"])["count"] for r in rows if r["kind"] == "folded"}
    assert folded == {"malformed_json": 300, "not_an_object": 16}
    documents = sum(r["kind"] == "document" for r in rows)
    assert documents + len(quarantine) - 1 + sum(folded.values()) == len(lines)


def test_names_that_are_not_utf8_are_carried_and_shown_escaped(tmp_path: Path):
    name = os.fsdecode(b"caf\xe9\x1b[2J.jsonl")  # a Latin-1 name holding a screen-clearing escape
    path = tmp_path / name
    path.write_bytes(b'{"text": "bonjour"}\n{"text": 3}\n')
    rows = read(path, "jsonl")
    doc, bad = rows
    assert doc["locator"] == "caf\\xe9\\x1b[2J.jsonl:1"
    assert bad["locator"] == "caf\\xe9\\x1b[2J.jsonl:2" and bad["reason"] == "text_not_a_string"
    assert bytes.fromhex(json.loads(doc["meta"])["path_hex"]) == b"caf\xe9\x1b[2J.jsonl"
    table = pa.Table.from_batches(list(to_batches(rows)), schema=RECORD_SCHEMA)  # fits Arrow
    assert table.num_rows == 2


def test_names_differing_only_in_undecodable_bytes_get_different_ids(tmp_path: Path):
    ids = set()
    for raw in (b"caf\xe9.jsonl", b"caf\xe8.jsonl"):
        path = tmp_path / os.fsdecode(raw)
        path.write_bytes(b'{"text": "same"}\n')
        ids.add(read(path, "jsonl")[0]["id"])
    assert len(ids) == 2


def test_lone_surrogates_in_json_are_quarantined_not_a_crash(tmp_path: Path):
    path = tmp_path / "surrogates.jsonl"
    path.write_bytes(
        b'{"text": "half a pair \\ud800 here"}\n'
        b'{"text": "fine", "title": "\\udfff"}\n'
        b'{"text": "fine too", "id": "\\ud800"}\n'
    )
    rows = read(path, "jsonl", options={"id_field": "id"})
    assert [r.get("reason") for r in rows] == ["invalid_unicode", None, None]
    assert json.loads(rows[1]["meta"]) == {"title": "\udfff"}  # kept, as a JSON escape
    pa.Table.from_batches(list(to_batches(rows)), schema=RECORD_SCHEMA)


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


# ------------------------------------------------------------------ WARC


def _http(status: str, content_type: str, extra: list[tuple[str, str]] | None = None) -> StatusAndHeaders:
    headers = [("Content-Type", content_type), *(extra or [])]
    return StatusAndHeaders(status, headers, protocol="HTTP/1.1")


PAGE = (
    b"<html><head><title>Hostile web</title></head><body><article><h1>Brotli is common</h1>"
    + b"<p>This paragraph is the main text of a page served with a content encoding. " * 8
    + b"</p></article></body></html>"
)


def build_warc(path: Path, max_doc_bytes: int) -> dict[str, int]:
    """Every kind of record a small crawl holds; returns the expected skip counts."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)

        def response(uri: str, body: bytes, http: StatusAndHeaders, rec_type: str = "response") -> None:
            record = writer.create_warc_record(uri, rec_type, payload=io.BytesIO(body), http_headers=http)
            writer.write_record(record)

        writer.write_record(writer.create_warcinfo_record("crawl.warc.gz", {"software": "test"}))
        dns = writer.create_warc_record(
            "dns:example.com",
            "response",
            payload=io.BytesIO(b"20260101000000\nexample.com. 300 IN A 93.184.216.34\n"),
            warc_content_type="text/dns",
        )
        writer.write_record(dns)
        writer.write_record(
            writer.create_warc_record(
                "https://example.com/",
                "request",
                payload=io.BytesIO(b""),
                http_headers=StatusAndHeaders(
                    "GET / HTTP/1.1", [("Host", "example.com")], is_http_request=True
                ),
            )
        )
        response("https://example.com/site.css", b"body { color: red }", _http("200 OK", "text/css"))
        response("https://example.com/app.js", b"alert(1)", _http("200 OK", "application/javascript"))
        response("https://example.com/logo.png", b"\x89PNG\r\n\x1a\n", _http("200 OK", "image/png"))
        response(
            "https://example.com/robots.txt", b"User-agent: *\nDisallow:\n", _http("200 OK", "text/plain")
        )
        response("https://example.com/gone", b"<html>Not found</html>", _http("404 Not Found", "text/html"))
        response("https://example.com/old", b"", _http("301 Moved Permanently", "text/html"))
        response("https://example.com/api", b'{"a": 1}', _http("200 OK", "application/json"))
        response(
            "https://example.com/br",
            brotli.compress(PAGE),
            _http("200 OK", "text/html", [("Content-Encoding", "br")]),
        )
        response(
            "https://example.com/zstd",
            zstandard.ZstdCompressor().compress(PAGE),
            _http("200 OK", "text/html", [("Content-Encoding", "zstd")]),
        )
        response(
            "https://example.com/gzip",
            gzip.compress(PAGE),
            _http("200 OK", "text/html; charset=utf-8", [("Content-Encoding", "gzip")]),
        )
        response("https://example.com/plain", PAGE, _http("200 OK", "text/html"))
        # A brotli bomb: a few kilobytes that inflate far past max_doc_bytes.
        bomb = brotli.compress(b"<p>" + b"a" * (max_doc_bytes * 20))
        response("https://example.com/bomb", bomb, _http("200 OK", "text/html", [("Content-Encoding", "br")]))
        writer.write_record(
            writer.create_warc_record(
                "https://example.com/", "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\n")
            )
        )
    return {
        "warc_warcinfo": 1,
        "warc_request": 1,
        "warc_metadata": 1,
        "dns": 1,
        "content_css": 1,
        "content_javascript": 1,
        "content_image": 1,
        "robots_txt": 1,
        "http_4xx": 1,
        "http_3xx": 1,
        "content_other": 1,
    }


def test_warc_decodes_brotli_and_zstd_and_skips_unwanted_records(tmp_path: Path):
    path = tmp_path / "crawl.warc.gz"
    expected_skips = build_warc(path, max_doc_bytes=MB)
    rows = read(path, "warc", max_doc_bytes=MB, options={"extractor": "resiliparse"})
    docs = {r["uri"]: r for r in rows if r["kind"] == "document"}
    assert set(docs) == {f"https://example.com/{p}" for p in ("br", "zstd", "gzip", "plain")}
    assert all("main text of a page" in d["text"] for d in docs.values())
    quarantine = [r for r in rows if r["kind"] == "quarantine"]
    assert [(r["reason"], r["excerpt"].split(": ")[-1]) for r in quarantine] == [
        ("oversize", "https://example.com/bomb")
    ]
    skipped = {r["reason"]: json.loads(r["meta"])["count"] for r in rows if r["kind"] == "skipped"}
    assert skipped == expected_skips


def test_brotli_body_decoding_is_bounded():
    """A brotli body is inflated to at most limit + 1 bytes, however far it would go."""
    body = brotli.compress(b"z" * (64 * MB))
    tracemalloc.start()
    decoded = decode_body(body, "br", MB)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(decoded) == MB + 1
    assert peak < 6 * MB, peak


def test_body_stored_decoded_under_a_gzip_header_is_kept_as_is():
    """Crawlers often store the decoded body and keep `Content-Encoding: gzip` (as in ClueWeb)."""
    assert decode_body(PAGE, "gzip", MB) == PAGE
    cut = zlib.compress(PAGE)[:-20]
    assert PAGE.startswith(decode_body(cut, "deflate", MB)[:50])


def test_response_without_target_uri_is_malformed_not_a_reader_error(tmp_path: Path):
    """Found by benchmarks/fuzz_readers.py: warcio's parser raises AttributeError on a response
    record without WARC-Target-URI; that is a malformed record, and the records before it stay."""
    path = tmp_path / "no-uri.warc"
    build_warc(tmp_path / "good.warc.gz", max_doc_bytes=MB)
    good = gzip.decompress((tmp_path / "good.warc.gz").read_bytes())
    path.write_bytes(good + b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 4\r\n\r\nabcd\r\n\r\n")
    rows = read(path, "warc", max_doc_bytes=MB, options={"extractor": "resiliparse"})
    assert reasons(rows) == Counter({"oversize": 1, "malformed_warc": 1})
    assert sum(r["kind"] == "document" for r in rows) == 4


def test_record_without_content_length_is_no_reader_error(tmp_path: Path):
    """Found by fuzzing: a record without Content-Length gets no LimitReader from warcio (its body
    stream has no `limit`); it is read to the end of the file, bounded by max_doc_bytes."""
    path = tmp_path / "no-length.warc"
    path.write_bytes(
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://example.com/\r\n"
        b"Content-Type: application/http; msgtype=response\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome plain text\r\n\r\n"
    )
    rows = read(path, "warc")
    assert [(r["kind"], r.get("reason")) for r in rows] == [("document", None)]
    assert rows[0]["text"] == "some plain text"


def test_warc_header_line_of_200_megabytes_is_cut_in_bounded_memory(tmp_path: Path):
    """warcio grows a header line by concatenation without bound (quadratic, and all of it held)."""
    path = tmp_path / "long-header.warc.gz"
    path.write_bytes(
        gzip.compress(b"WARC/1.0\r\nWARC-Type: response\r\nX-Long: " + b"a" * (200 * MB) + b"\r\n\r\n")
    )
    tracemalloc.start()
    rows = read(path, "warc")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reasons(rows) == Counter({"malformed_warc": 1})
    assert "header line over" in rows[0]["excerpt"]
    # The 1 MB line cap and a few of warcio's 16 KB blocks inflated (up to 16 MB each): a bound
    # that does not grow with the line.
    assert peak < 100 * MB, peak


def test_warc_gzip_member_bomb_stops_at_the_ratio_limit(tmp_path: Path):
    """One per-record gzip member declaring 400 MB of zeros in a file of ~400 KB: warcio would
    inflate all of it to stream past the oversize body; the file's ratio limit stops it."""
    header = (
        b"WARC/1.0\r\nWARC-Type: resource\r\nWARC-Target-URI: file:///zeros\r\nContent-Type: text/plain\r\n"
    )
    header += f"Content-Length: {400 * MB}\r\n\r\n".encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(header)]
    parts += [packer.compress(bytes(16 * MB)) for _ in range(25)]
    path = tmp_path / "zeros.warc.gz"
    path.write_bytes(b"".join(parts) + packer.flush())
    tracemalloc.start()
    rows = read(path, "warc")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reasons(rows) == Counter({"compression_bomb": 1})
    assert peak < 100 * MB, peak  # a few 16 KB blocks inflated (up to 16 MB each), not 400 MB


def test_huge_sidecar_caption_is_cut(tmp_path: Path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "cat.png")
    (tmp_path / "cat.txt").write_bytes(b"a cat " * (4 * MB))
    rows = read(tmp_path / "cat.png", "images")
    assert rows[0]["kind"] == "image"
    assert len(rows[0]["caption"]) <= MAX_CAPTION_CHARS
