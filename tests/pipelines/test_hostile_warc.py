"""Hostile WARCs to the reader (no Spark): records nobody wants, every content encoding, bounded body
decoding, records that warcio's parser trips on (found by benchmarks/fuzz_readers.py), a 200 MB
header line and a gzip member bomb. Every file is built by the test (tests/pipelines/hostile_files.py)."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

import brotli

from pipelines.ingest.readers.compressed import decode_body
from tests.pipelines.hostile_files import MB, PAGE, build_warc, read, reasons


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
