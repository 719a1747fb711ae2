"""WARC ingest from object storage: our ingest stage vs datatrove's WarcReader, both reading the same
objects from the same loopback S3 server on the same 2 cores.

Corpus: benchmarks.ingest's (the real WARCs of ../shared/data/web copied N times under distinct
names; `--quick` uses 2 copies), uploaded to a moto S3 server started in its own process on
127.0.0.1 (so neither side's Python shares a GIL with the server).

Ours: Spark local[2]; the ingest stage reads `s3://bench/warcs/*.warc.gz` through the I/O layer
(pyarrow's S3 client, ranged GETs) and writes the documents / images / quarantine tables into the S3
lake `s3://bench/lake`, committed with delta-rs (benchmarks.ingest.ours; timed from the stage's start
to the last commit, the JVM start reported apart as there).
Anchor: datatrove 0.10.1 `LocalPipelineExecutor(tasks=2, workers=2)`: `WarcReader` over the same
prefix through fsspec (s3fs, same endpoint) -> each document's HTML through the same extractor call
(pipelines.ingest.html_text.extract_text, trafilatura by default), timed around `executor.run()`.

Unit: documents extracted per second, each side counting the pages it turned into text, as
benchmarks.ingest counts records. Both read every byte of the same objects, but they do not extract
the same pages: datatrove's WarcReader drops every response whose `WARC-Identified-Payload-Type`
header is present but empty, which is all 29 ClueWeb09 pages of each copy (it keeps 1,248 of the
1,992 pages at 24 copies), so MB of input per second would charge ours for the pages it extracts and
datatrove skips. That rate, and its ratio, are in the details (`mb_per_s`). Target: ours / anchor >= 1.5.

Run: `python -m benchmarks.s3_ingest [--quick] [--copies N] [--extractor NAME]`; the last line is the
benchmark JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.ingest import WARCS, build_corpus, ours
from pipelines.ingest.html_text import DEFAULT_EXTRACTOR, extract_text

BUCKET = "bench"
# Fake credentials for the loopback server (it checks none); real ones never belong in a benchmark.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-access-key", "AWS_SECRET_ACCESS_KEY": "bench-secret-key"}


@contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server in a child process on a free loopback port; yields its endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def upload(endpoint: str, files: list[Path]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    for path in files:
        client.upload_file(str(path), BUCKET, f"warcs/{path.name}")


def extract_documents(data: Any, rank: int = 0, world_size: int = 1, extractor: str = "") -> Any:
    """The anchor's extraction step: the same call ours makes on each page's HTML."""
    for document in data:
        document.text = extract_text(document.text, extractor)  # type: ignore[arg-type]
        yield document


def anchor(endpoint: str, work: Path, extractor: str) -> tuple[int, float]:
    """(documents extracted, seconds) for datatrove reading the objects through s3fs on 2 workers."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import WarcReader

    options = {
        "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    pipeline = [
        WarcReader((f"s3://{BUCKET}/warcs", options), glob_pattern="*.warc.gz"),
        functools.partial(extract_documents, extractor=extractor),
    ]
    executor = LocalPipelineExecutor(pipeline, tasks=2, workers=2, logging_dir=str(work / "datatrove_logs"))
    start = time.perf_counter()
    stats = executor.run()
    seconds = time.perf_counter() - start
    return int(stats.stats[0].stats["documents"].total), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 copies of the WARCs")
    parser.add_argument("--copies", type=int, default=None, help="copies of the real WARCs (default 24)")
    parser.add_argument("--extractor", default=DEFAULT_EXTRACTOR, choices=["trafilatura", "resiliparse"])
    args = parser.parse_args()
    copies = args.copies or (2 if args.quick else 24)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-s3-ingest-") as tmp, s3_server() as endpoint:
        os.environ.update(
            {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
        )
        folder = Path(tmp) / "warcs"
        folder.mkdir()
        files, size = build_corpus(folder, copies)
        upload(endpoint, files)
        mb = size / 1e6
        print(
            f"corpus: {len(files)} WARC objects, {mb:.1f} MB on {endpoint} ({copies} copies of {len(WARCS)})"
        )
        a_docs, a_seconds = anchor(endpoint, Path(tmp), args.extractor)
        print(f"anchor: {a_docs} documents in {a_seconds:.1f} s (datatrove WarcReader + s3fs, 2 workers)")
        source, lake = f"s3://{BUCKET}/warcs/*.warc.gz", f"s3://{BUCKET}/lake"
        o_records, o_seconds, startup, metrics = ours(source, Path(tmp), args.extractor, lake)
        print(f"ours:   {o_records} records in {o_seconds:.1f} s (Spark local[2]; start-up {startup:.1f} s)")
        print(f"ours metrics: {json.dumps(metrics['rows'])} quarantined={json.dumps(metrics['quarantined'])}")
        o_docs = int(metrics["rows"]["warc"].get("documents", 0))
    ours_rate, anchor_rate = o_docs / o_seconds, a_docs / a_seconds
    ratio = ours_rate / anchor_rate
    print(
        json.dumps(
            {
                "benchmark": "s3_ingest",
                "ours": round(ours_rate, 2),
                "anchor": round(anchor_rate, 2),
                "unit": "WARC documents extracted/s (read from a loopback S3 server)",
                "ratio": round(ratio, 3),
                "target": 1.5,
                "pass": ratio >= 1.5,
                "details": {
                    "files": len(files),
                    "mb": round(mb, 1),
                    "documents": {"ours": o_docs, "anchor": a_docs, "ours_records_in": o_records},
                    "seconds": {
                        "ours": round(o_seconds, 1),
                        "anchor": round(a_seconds, 1),
                        "spark_startup": round(startup, 1),
                    },
                    "ratio_with_startup": round(o_docs / (o_seconds + startup) / anchor_rate, 3),
                    "mb_per_s": {
                        "ours": round(mb / o_seconds, 3),
                        "anchor": round(mb / a_seconds, 3),
                        "ratio": round(a_seconds / o_seconds, 3),
                    },
                    "extractor": args.extractor,
                    "load_avg_1min": {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1)},
                },
            }
        )
    )


if __name__ == "__main__":
    main()
