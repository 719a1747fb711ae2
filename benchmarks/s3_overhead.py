"""What object storage costs: the demo-sized pipeline with its lake on S3 vs on local disk, same data.

The pipeline is the demo's core (jobs/examples/demo.yaml's inputs from samples/): ingest of the
WARC, JSONL and damaged files; annotate (langid, gopher, c4, fineweb, minhash); decide; exact and
MinHash dedup; tokenized shards. One side writes its lake to a folder, the other to
`s3://<bucket>/lake` on an S3 server on 127.0.0.1 (moto's, started as its own process so that it
never shares the driver's interpreter) reached with only the five AWS_* variables set. Each side
runs in its own process on Spark local[2]; Spark's start-up is left out, every stage is in.
Sides alternate for `--rounds` rounds; each side's best is compared.

ratio = local seconds / S3 seconds (1.0: S3 costs nothing; target >= 0.7, i.e. at most 30% slower).
Both lakes must end with the same table contents (tests/pipelines/table_hashes.py): a fast wrong
answer does not count. The last line of output is JSON.
Run: python -m benchmarks.s3_overhead [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
KEY_ID, SECRET = "AKIABENCHMARKKEY0001", "benchmark-secret-not-a-real-one"
STAGES: list[dict[str, Any]] = [
    {
        "stage": "ingest",
        "params": {
            "inputs": [
                {"name": "crawl", "path": "samples/web", "format": "warc"},
                {"name": "cc-wet", "path": "samples/jsonl/cc_en_head-*.jsonl.gz", "format": "jsonl"},
                {"name": "pretrain-mix", "path": "samples/jsonl/*-refined.jsonl", "format": "jsonl"},
                {"name": "damaged", "path": "samples/bad", "format": "auto"},
            ]
        },
    },
    {
        "stage": "annotate",
        "params": {
            "input": "documents",
            "output": "annotated",
            "annotators": ["langid", "gopher", "c4", "fineweb", "minhash"],
        },
    },
    {"stage": "decide", "params": {"input": "annotated", "output": "decided", "presets": ["gopher", "c4"]}},
    {"stage": "exact_dedup", "params": {"input": "decided", "output": "deduped"}},
    {
        "stage": "minhash_dedup",
        "params": {"input": "deduped", "output": "deduped", "threshold": 0.7, "reuse_signatures": True},
    },
    {"stage": "shards", "params": {"input": "deduped", "name": "default", "shard_tokens": 65536}},
]


def write_spec(folder: Path, lake: str) -> Path:
    spec = {
        "name": "bench",
        "lake": lake,
        "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": 8}},
        "stages": STAGES,
    }
    path = folder / f"spec-{'s3' if lake.startswith('s3://') else 'local'}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_side(spec: Path, out: Path) -> None:
    """One side, in its own process: warm Spark, then time the whole job."""
    from pipelines.framework.runner import run_spec
    from pipelines.framework.spark import get_spark

    conf = {"spark.sql.shuffle.partitions": "8", "spark.ui.showConsoleProgress": "false"}
    spark = get_spark("local[2]", conf, ui=False, app_name="bench-s3-overhead")
    spark.range(1).count()  # start-up is not what is measured
    start = time.perf_counter()
    record = run_spec(spec, progress=False, spark=spark)
    seconds = time.perf_counter() - start
    if record.status != "succeeded":
        raise SystemExit(f"{spec.name}: run {record.status}: {record.error}")
    stages = {s.id: s.seconds for s in record.stages}
    out.write_text(json.dumps({"seconds": seconds, "stages": stages, "lake": record.lake}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def s3_server():
    """moto's S3 server as a separate process on loopback; yields the endpoint URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def _side_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
        REFINERY_CODE_VERSION="bench-s3-overhead",
        PYTHONPATH=str(REPO),
    )
    return env


def _measure(spec: Path, env: dict[str, str], out: Path) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, "-m", "benchmarks.s3_overhead", "--side", str(spec), str(out)],
        cwd=REPO,
        env=env,
        check=True,
    )
    return json.loads(out.read_text())


def _hashes(lake: str, env: dict[str, str]) -> dict[str, Any]:
    """Content hashes of the job's tables, computed with the side's storage settings."""
    code = (
        "import json, sys; from tests.pipelines.table_hashes import lake_hashes; "
        "print(json.dumps(lake_hashes(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, f"{lake}/bench"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--side", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(Path(args.side[0]), Path(args.side[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp, s3_server() as endpoint:
        folder = Path(tmp)
        env = _side_env(endpoint)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")
        best: dict[str, dict[str, Any]] = {}
        for round_no in range(args.rounds):
            for side in ("local", "s3"):
                lake = (
                    f"s3://bench/round{round_no}/lake"
                    if side == "s3"
                    else str(folder / f"round{round_no}" / "lake")
                )
                result = _measure(write_spec(folder, lake), env, folder / f"{side}.json")
                result["hashes"] = _hashes(lake, env)
                print(json.dumps({"side": side, "round": round_no, **result}, default=str), file=sys.stderr)
                if side not in best or result["seconds"] < best[side]["seconds"]:
                    best[side] = result
        same = best["local"]["hashes"] == best["s3"]["hashes"]
        ratio = round(best["local"]["seconds"] / best["s3"]["seconds"], 3)
        print(
            json.dumps({"stages_local": best["local"]["stages"], "stages_s3": best["s3"]["stages"]}),
            file=sys.stderr,
        )
        summary = {
            "benchmark": "s3_overhead",
            "ours": round(best["s3"]["seconds"], 2),
            "anchor": round(best["local"]["seconds"], 2),
            "unit": "seconds (S3 lake vs local-disk lake)",
            "ratio": ratio,
            "target": 0.7,
            "pass": same and ratio >= 0.7,
            "same_tables": same,
        }
        print(json.dumps(summary))
        if not same:
            raise SystemExit("the S3 lake's tables differ from the local lake's")


if __name__ == "__main__":
    main()
