"""Coverage-guided fuzzing of the ingest readers and the annotate kernel with atheris (not in CI).

    python -m benchmarks.fuzz_readers TARGET [libFuzzer flags]
    python -m benchmarks.fuzz_readers jsonl -max_total_time=60 -timeout=20 -rss_limit_mb=3072

TARGET is one of TARGETS. Each input is written to a file of the target's format and read with
`read_file`, as a Spark task would; the annotate target turns the bytes into a batch of texts.
What counts as a finding (libFuzzer stops and saves the input under -artifact_prefix):
* an exception out of `read_file` or the kernel (the readers' contract is to never raise);
* a `reader_error` row: an error no reader foresaw, caught only by the last-resort guard;
* rows that do not fit the Arrow record schema (a crash in the Spark task that writes them);
* a hang or a memory blow-up (libFuzzer's -timeout and -rss_limit_mb).
Seeds are small valid files of each format, built here, so mutation starts from real structure.
Every finding becomes a regression test in tests/pipelines/test_hostile_*.py; results go in
BENCHMARKS.md (minutes run, inputs tried, findings).
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# Coverage feedback from our code and warcio's parser; instrumenting every dependency (torch
# comes in with the annotate kernel) would cost minutes at start and slow every input.
with atheris.instrument_imports(include=["pipelines", "curation", "warcio"]):
    from curation.annotate.kernel import AnnotateKernel
    from curation.annotate.stage import AnnotateConfig
    from pipelines.ingest.readers import read_file
    from pipelines.ingest.readers.base import FileTask
    from pipelines.ingest.readers.schema import RECORD_SCHEMA, to_batches

WORK = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))
PAGE = b"<html><head><meta charset='utf-8'><title>t</title></head><body><p>Some text here.</p></body></html>"


class Finding(Exception):
    """A reader broke its contract on this input."""


def _check_rows(task: FileTask) -> None:
    rows = list(read_file(task))
    for row in rows:
        if row.get("reason") == "reader_error":
            raise Finding(f"reader_error: {row['excerpt']}")
    pa.Table.from_batches(list(to_batches(rows)), schema=RECORD_SCHEMA)


def _reader_target(name: str, fmt: str, options: dict | None = None) -> Callable[[bytes], None]:
    path = WORK / name

    def run(data: bytes) -> None:
        path.write_bytes(data)
        _check_rows(FileTask("fuzz", str(path), name, fmt, options or {}, max_doc_bytes=1 << 20))

    return run


_ANNOTATOR: AnnotateKernel | None = None


def _annotate(data: bytes) -> None:
    global _ANNOTATOR
    _ANNOTATOR = _ANNOTATOR or AnnotateConfig().kernel()
    texts = data.decode("utf-8", errors="replace").split("\x00")[:8]
    batch = pa.RecordBatch.from_pydict(
        {"text": texts, "uri": [f"https://example.com/{i}" for i in range(len(texts))]}
    )
    _ANNOTATOR(batch)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "jsonl": _reader_target("in.jsonl", "jsonl"),
    "jsonl_gz": _reader_target("in.jsonl.gz", "jsonl"),
    "json": _reader_target("in.json", "jsonl"),
    "warc": _reader_target("in.warc", "warc", {"extractor": "resiliparse"}),
    "warc_gz": _reader_target("in.warc.gz", "warc", {"extractor": "resiliparse"}),
    "parquet": _reader_target("in.parquet", "parquet"),
    "html": _reader_target("in.html", "html", {"extractor": "resiliparse"}),
    "image": _reader_target("in.png", "images", {"captions": "none"}),
    "annotate": _annotate,
}


def _warc_seed(compress: bool) -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=compress)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
    writer.write_record(writer.create_warcinfo_record("f.warc", {"software": "fuzz"}))
    writer.write_record(
        writer.create_warc_record(
            "https://example.com/", "response", payload=io.BytesIO(PAGE), http_headers=http
        )
    )
    gzip_http = StatusAndHeaders(
        "200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip")], protocol="HTTP/1.1"
    )
    writer.write_record(
        writer.create_warc_record(
            "https://example.com/z",
            "response",
            payload=io.BytesIO(gzip.compress(PAGE)),
            http_headers=gzip_http,
        )
    )
    return out.getvalue()


def _parquet_seed() -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table({"text": ["a document", "another one"], "url": ["https://a", None]}), out)
    return out.getvalue()


def _png_seed() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def seeds(target: str) -> list[bytes]:
    lines = b'{"text": "hello", "url": "https://a"}\n{"text": "second", "id": 2}\n'
    return {
        "jsonl": [lines],
        "jsonl_gz": [gzip.compress(lines)],
        "json": [json.dumps([{"text": "one"}, {"text": "two"}]).encode()],
        "warc": [_warc_seed(False)],
        "warc_gz": [_warc_seed(True)],
        "parquet": [_parquet_seed()],
        "html": [PAGE],
        "image": [_png_seed()],
        "annotate": [b"The quick brown fox jumps over the lazy dog.\x00Der schnelle braune Fuchs."],
    }[target]


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m benchmarks.fuzz_readers {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    target = sys.argv[1]
    corpus = WORK / f"corpus-{target}"
    corpus.mkdir()
    for index, seed in enumerate(seeds(target)):
        (corpus / f"seed-{index}").write_bytes(seed)
    fuzz = TARGETS[target]
    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], fuzz)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
