"""WARC ingest from object storage: our ingest stage vs datatrove's WarcReader, both reading the same
objects from the same loopback S3 server on the same 2 cores.

Corpus: benchmarks.ingest's (the real WARCs of ../shared/data/web copied N times under distinct
names; `--quick` uses 2 copies), uploaded to a moto S3 server started in its own process on
127.0.0.1 (so neither side's Python shares a GIL with the server).

Ours: Spark local[2]; the ingest stage reads `s3://bench/warcs/*.warc.gz` through the I/O layer
(pyarrow's S3 client, ranged GETs) and writes the documents / images / quarantine tables into the S3
lake `s3://bench/lake`, committed with delta-rs (benchmarks.ingest.ours; timed from the stage's start
to the last commit, the JVM start reported apart as there).
Anchor (the headline, as issue 14 defines it): datatrove 0.10.1 `LocalPipelineExecutor(tasks=2,
workers=2)`: `WarcReader` over the same prefix through fsspec (s3fs, same endpoint) -> each document's
HTML through the same extractor call (pipelines.ingest.html_text.extract_text, trafilatura by
default), timed around `executor.run()`. Second anchor (details, `anchor_datatrove_trafilatura`):
the same reader followed by datatrove's own `Trafilatura()` step with its defaults, as FineWeb runs
it (favour_precision, deduplicate, a sandbox process with a 1 s timeout per page); it extracts with
other settings than ours, so its texts differ and it is not the headline.

Unit: documents extracted per second, each side counting the pages it turned into text, as
benchmarks.ingest counts records. Both read every byte of the same objects, but they do not extract
the same pages: datatrove's WarcReader drops every response whose `WARC-Identified-Payload-Type`
header is present but empty, which is all 29 ClueWeb09 pages of each copy (it keeps 1,248 of the
1,992 pages at 24 copies), so MB of input per second would charge ours for the pages it extracts and
datatrove skips. That rate, and its ratio, are in the details (`mb_per_s`). `--without-clueweb`
builds the corpus from the other four WARCs, whose pages both sides extract (a like-for-like ratio).
The S3 requests each side sent are counted from the server's log (`s3_requests`).
Target: ours / anchor >= 1.5.

Run: `python -m benchmarks.s3_ingest [--quick] [--copies N] [--extractor NAME] [--without-clueweb]`;
the last line is the benchmark JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
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


REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|HEAD|PUT|POST|DELETE) ')


class RequestLog:
    """The server's access log (one line per request), counted between two points of the run."""

    def __init__(self, path: Path):
        self.path = path

    def count(self) -> int:
        return len(REQUEST.findall(self.path.read_text(errors="replace")))


@contextmanager
def s3_server(log: Path | None = None) -> Iterator[str]:
    """A moto S3 server in a child process on a free loopback port; yields its endpoint URL. Its
    access log goes to `log` when given (one line per request)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=sink, stderr=sink
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
        if log:
            sink.close()  # type: ignore[union-attr]


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


def _executor(pipeline: list[Any], work: Path, name: str) -> tuple[Any, float]:
    """datatrove's local executor over `pipeline` on 2 workers: (its stats, seconds of executor.run())."""
    from datatrove.executor import LocalPipelineExecutor

    executor = LocalPipelineExecutor(pipeline, tasks=2, workers=2, logging_dir=str(work / name))
    start = time.perf_counter()
    stats = executor.run()
    return stats, time.perf_counter() - start


def _reader(endpoint: str) -> Any:
    """datatrove's WarcReader over the benchmark's objects through s3fs."""
    from datatrove.pipeline.readers import WarcReader

    options = {
        "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return WarcReader((f"s3://{BUCKET}/warcs", options), glob_pattern="*.warc.gz")


def anchor(endpoint: str, work: Path, extractor: str) -> tuple[int, float]:
    """(documents extracted, seconds): datatrove's reader + our extract_text call on 2 workers."""
    pipeline = [_reader(endpoint), functools.partial(extract_documents, extractor=extractor)]
    stats, seconds = _executor(pipeline, work, "datatrove_same_extractor")
    return int(stats.stats[0].stats["documents"].total), seconds


def anchor_datatrove_trafilatura(endpoint: str, work: Path) -> tuple[int, float, dict[str, int]]:
    """(pages extracted, seconds, its counters): datatrove's reader + its own Trafilatura step.

    The rate counts the pages the step extracted, not the ones it forwarded: its `deduplicate=True`
    keeps an in-process cache of paragraphs seen, so on this corpus of copies it empties (and
    drops) every later copy of a page, which says nothing about its speed."""
    from datatrove.pipeline.extractors import Trafilatura

    stats, seconds = _executor([_reader(endpoint), Trafilatura()], work, "datatrove_trafilatura")
    counters = {
        k: int(stats.stats[1].stats[k].total) for k in ("extracted", "forwarded", "dropped", "timeout")
    }
    return counters["extracted"], seconds, counters


def run_sides(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Upload the corpus, run both anchors then ours; every figure the result line needs."""
    names = tuple(n for n in WARCS if not (args.without_clueweb and "clueweb" in n))
    copies = args.copies or (2 if args.quick else 24)
    requests = RequestLog(tmp / "s3.log")
    with s3_server(requests.path) as endpoint:
        os.environ.update(
            {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
        )
        folder = tmp / "warcs"
        folder.mkdir()
        files, size = build_corpus(folder, copies, names)
        upload(endpoint, files)
        print(
            f"corpus: {len(files)} WARC objects, {size / 1e6:.1f} MB on {endpoint} ({copies} copies of {len(names)})"
        )
        seen = requests.count()
        a_docs, a_seconds = anchor(endpoint, tmp, args.extractor)
        a_requests, seen = requests.count() - seen, requests.count()
        print(f"anchor: {a_docs} documents in {a_seconds:.1f} s (datatrove WarcReader + s3fs, 2 workers)")
        t_docs, t_seconds, counters = anchor_datatrove_trafilatura(endpoint, tmp)
        seen = requests.count()
        print(
            f"anchor (datatrove's Trafilatura step): {t_docs} pages extracted in {t_seconds:.1f} s, {counters}"
        )
        source, lake = f"s3://{BUCKET}/warcs/*.warc.gz", f"s3://{BUCKET}/lake"
        o_records, o_seconds, startup, metrics = ours(source, tmp, args.extractor, lake)
        o_requests = requests.count() - seen
        print(f"ours:   {o_records} records in {o_seconds:.1f} s (Spark local[2]; start-up {startup:.1f} s)")
        print(f"ours metrics: {json.dumps(metrics['rows'])} quarantined={json.dumps(metrics['quarantined'])}")
    return {
        "files": len(files),
        "mb": size / 1e6,
        "ours": (int(metrics["rows"]["warc"].get("documents", 0)), o_seconds),
        "anchor": (a_docs, a_seconds),
        "anchor_datatrove_trafilatura": (t_docs, t_seconds),
        "datatrove_trafilatura": counters,
        "records_in": o_records,
        "startup": startup,
        "requests": {"ours": o_requests, "anchor": a_requests},
        "corpus": "without ClueWeb09" if args.without_clueweb else "all five WARCs",
    }


def result_line(run: dict[str, Any], extractor: str, load_before: float) -> dict[str, Any]:
    """The benchmark JSON: the headline ratio against the same-extractor anchor, the rest in details."""
    sides = ("ours", "anchor", "anchor_datatrove_trafilatura")
    rate = {side: run[side][0] / run[side][1] for side in sides}
    ratio = rate["ours"] / rate["anchor"]
    (o_docs, o_seconds), (a_docs, a_seconds) = run["ours"], run["anchor"]
    t_docs, t_seconds = run["anchor_datatrove_trafilatura"]
    return {
        "benchmark": "s3_ingest",
        "ours": round(rate["ours"], 2),
        "anchor": round(rate["anchor"], 2),
        "unit": "WARC documents extracted/s (read from a loopback S3 server)",
        "ratio": round(ratio, 3),
        "target": 1.5,
        "pass": ratio >= 1.5,
        "ratio_vs_datatrove_trafilatura": round(rate["ours"] / rate["anchor_datatrove_trafilatura"], 3),
        "details": {
            "corpus": run["corpus"],
            "files": run["files"],
            "mb": round(run["mb"], 1),
            "documents": {"ours": o_docs, "anchor": a_docs, "anchor_datatrove_trafilatura": t_docs},
            "ours_records_in": run["records_in"],
            "datatrove_trafilatura_step": run["datatrove_trafilatura"],
            "seconds": {
                "ours": round(o_seconds, 1),
                "anchor": round(a_seconds, 1),
                "anchor_datatrove_trafilatura": round(t_seconds, 1),
                "spark_startup": round(run["startup"], 1),
            },
            "ratio_with_startup": round(o_docs / (o_seconds + run["startup"]) / rate["anchor"], 3),
            "mb_per_s": {
                "ours": round(run["mb"] / o_seconds, 3),
                "anchor": round(run["mb"] / a_seconds, 3),
                "ratio": round(a_seconds / o_seconds, 3),
            },
            "s3_requests": run["requests"],
            "extractor": extractor,
            "load_avg_1min": {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1)},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 copies of the WARCs")
    parser.add_argument("--copies", type=int, default=None, help="copies of the real WARCs (default 24)")
    parser.add_argument("--extractor", default=DEFAULT_EXTRACTOR, choices=["trafilatura", "resiliparse"])
    parser.add_argument("--without-clueweb", action="store_true", help="leave out the ClueWeb09 WARC")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-s3-ingest-") as tmp:
        run = run_sides(args, Path(tmp))
    print(json.dumps(result_line(run, args.extractor, load_before)))


if __name__ == "__main__":
    main()
