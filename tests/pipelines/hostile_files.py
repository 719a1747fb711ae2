"""Hostile files that tests build themselves, and the helpers that read them (no Spark).

Shared by the reader tests (`test_hostile_*.py`) and the run through Spark (`test_hostile_ingest.py`).
"""

from __future__ import annotations

import gzip
import io
import os
from collections import Counter
from pathlib import Path

import brotli
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.ingest.readers import read_file
from pipelines.ingest.readers.base import FileTask

MB = 1 << 20

PAGE = (
    b"<html><head><title>Hostile web</title></head><body><article><h1>Brotli is common</h1>"
    + b"<p>This paragraph is the main text of a page served with a content encoding. " * 8
    + b"</p></article></body></html>"
)

# The records build_warc writes that a reader skips, per skip reason.
WARC_SKIPS = {
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


def http_headers(
    status: str, content_type: str, extra: list[tuple[str, str]] | None = None
) -> StatusAndHeaders:
    headers = [("Content-Type", content_type), *(extra or [])]
    return StatusAndHeaders(status, headers, protocol="HTTP/1.1")


def _response(writer: WARCWriter, uri: str, body: bytes, http: StatusAndHeaders) -> None:
    writer.write_record(
        writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http)
    )


def _write_unwanted(writer: WARCWriter) -> None:
    """One record of each kind a reader skips (WARC_SKIPS), in a crawl's usual order."""
    writer.write_record(writer.create_warcinfo_record("crawl.warc.gz", {"software": "test"}))
    dns = writer.create_warc_record(
        "dns:example.com",
        "response",
        payload=io.BytesIO(b"20260101000000\nexample.com. 300 IN A 93.184.216.34\n"),
        warc_content_type="text/dns",
    )
    writer.write_record(dns)
    request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.com")], is_http_request=True)
    writer.write_record(
        writer.create_warc_record(
            "https://example.com/", "request", payload=io.BytesIO(b""), http_headers=request
        )
    )
    _response(
        writer, "https://example.com/site.css", b"body { color: red }", http_headers("200 OK", "text/css")
    )
    _response(
        writer, "https://example.com/app.js", b"alert(1)", http_headers("200 OK", "application/javascript")
    )
    _response(
        writer, "https://example.com/logo.png", b"\x89PNG\r\n\x1a\n", http_headers("200 OK", "image/png")
    )
    robots = http_headers("200 OK", "text/plain")
    _response(writer, "https://example.com/robots.txt", b"User-agent: *\nDisallow:\n", robots)
    gone = http_headers("404 Not Found", "text/html")
    _response(writer, "https://example.com/gone", b"<html>Not found</html>", gone)
    _response(writer, "https://example.com/old", b"", http_headers("301 Moved Permanently", "text/html"))
    _response(writer, "https://example.com/api", b'{"a": 1}', http_headers("200 OK", "application/json"))


def _write_pages(writer: WARCWriter, max_doc_bytes: int) -> None:
    """PAGE under each content encoding, plain, then a brotli bomb past `max_doc_bytes`."""
    for name, body, encoding in (
        ("br", brotli.compress(PAGE), "br"),
        ("zstd", zstandard.ZstdCompressor().compress(PAGE), "zstd"),
        ("gzip", gzip.compress(PAGE), "gzip"),
    ):
        content_type = "text/html; charset=utf-8" if name == "gzip" else "text/html"
        http = http_headers("200 OK", content_type, [("Content-Encoding", encoding)])
        _response(writer, f"https://example.com/{name}", body, http)
    _response(writer, "https://example.com/plain", PAGE, http_headers("200 OK", "text/html"))
    # A brotli bomb: a few kilobytes that inflate far past max_doc_bytes.
    bomb = brotli.compress(b"<p>" + b"a" * (max_doc_bytes * 20))
    http = http_headers("200 OK", "text/html", [("Content-Encoding", "br")])
    _response(writer, "https://example.com/bomb", bomb, http)


def build_warc(path: Path, max_doc_bytes: int) -> dict[str, int]:
    """Every kind of record a small crawl holds; returns the expected skip counts (WARC_SKIPS)."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        _write_unwanted(writer)
        _write_pages(writer, max_doc_bytes)
        writer.write_record(
            writer.create_warc_record(
                "https://example.com/", "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\n")
            )
        )
    return dict(WARC_SKIPS)
