"""Whole near-dedup: our Spark `minhash_dedup` stage vs datatrove's four-stage MinhashDedup, 2 cores each.

Corpus (built from ../shared/data, deterministic): the 1,030 trafilatura evaluation
pages extracted to text (`load_web_texts`), cut into 200-word segments; the
first pass over the segments is the originals (pages of one site share
navigation and footer segments: natural duplicates), later passes cycle them
with a seeded perturbation per copy: 40% exact copies, 40% light edits (1-3
words replaced, Jaccard ~0.95), 20% heavy edits (half the words replaced,
Jaccard ~0.05). Documents are written as JSONL (ids in reading order, so that
both sides' "smallest id wins" pick the same representative) and as a Delta table.

Both sides: 5-word shingles, 14 bands x 8 rows, seed 1, 2 cores.
- ours: `MinHashDedup.run` + `Lake.write` on Spark local[2] with
  spark.driver.maxResultSize=8m (the driver never receives rows);
- anchor: datatrove MinhashDedupSignature (2 tasks) -> MinhashDedupBuckets (14
  tasks) -> MinhashDedupCluster -> MinhashDedupFilter (2 tasks), each a
  LocalPipelineExecutor with 2 workers.
Each side runs in its own subprocess; its peak memory is the largest summed RSS
of its process tree (sampled every 0.2 s). Agreement is the Jaccard index of
the two removed sets, also given per kind of document.
Run: python -m benchmarks.dedup_e2e [--quick] [--docs N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks.minhash_kernel import load_web_texts

SEGMENT_WORDS = 200
FILES = 2


def build_corpus(num_docs: int, folder: Path, seed: int = 0, mixed: bool = False) -> dict[str, str]:
    """Write the JSONL corpus under folder/jsonl; return doc_id -> kind (original, copy, light, heavy).

    `mixed` shuffles the segments before the first num_docs // 8 are taken, so that every size
    draws from all pages (languages) alike (benchmarks/scaling.py); by default they come in page order.
    """
    rng = random.Random(seed)
    segments = []
    for text in load_web_texts():
        words = text.split()
        segments += [" ".join(words[i : i + SEGMENT_WORDS]) for i in range(0, len(words) - 50, SEGMENT_WORDS)]
    if mixed:
        random.Random(seed).shuffle(segments)
    segments = segments[: max(1, num_docs // 8)]  # about 8 passes, so that every size has copies
    kinds: dict[str, str] = {}
    (folder / "jsonl").mkdir(parents=True)
    per_file = -(-num_docs // FILES)
    lines: list[list[str]] = [[] for _ in range(FILES)]
    for i in range(num_docs):
        text = segments[i % len(segments)]
        kind = "original"
        if i >= len(segments):
            roll = rng.random()
            words = text.split()
            if roll < 0.4:
                kind = "copy"
            elif roll < 0.8:
                kind = "light"
                for j in rng.sample(range(len(words)), min(len(words), rng.randint(1, 3))):
                    words[j] = rng.choice(words)
            else:
                kind = "heavy"
                for j in rng.sample(range(len(words)), len(words) // 2):
                    words[j] = rng.choice(segments[rng.randrange(len(segments))].split() or ["x"])
            text = " ".join(words)
        doc_id = f"d{i:07d}"
        kinds[doc_id] = kind
        lines[i // per_file].append(json.dumps({"id": doc_id, "text": text}) + "\n")
    for f, chunk in enumerate(lines):
        with gzip.open(folder / "jsonl" / f"part-{f}.jsonl.gz", "wt", encoding="utf-8") as out:
            out.writelines(chunk)
    return kinds


def run_ours(folder: Path) -> tuple[set[str], float]:
    """The minhash_dedup stage over a Delta table of the corpus; returns the removed ids."""
    import pyarrow as pa
    import pyarrow.json as pj

    from dedup.near_duplicates import NEAR_DUPLICATE
    from dedup.stages import MinHashDedup
    from pipelines.framework.drop_reason import DROP_REASON
    from pipelines.framework.lake import Lake
    from pipelines.framework.spark import get_spark
    from pipelines.framework.stage import StageContext

    lake = Lake(folder / "lake")
    tables = []
    for path in sorted((folder / "jsonl").glob("*.jsonl.gz")):
        with gzip.open(path) as handle:
            tables.append(pj.read_json(handle))
    docs = pa.concat_tables(tables).rename_columns(["doc_id", "text"])
    lake.write_arrow(docs, "bench/documents")
    spark = get_spark(
        "local[2]",
        {
            "spark.driver.maxResultSize": "8m",
            "spark.driver.memory": "1g",
            "spark.sql.shuffle.partitions": "8",
        },
        ui=False,
        app_name="bench-dedup-e2e",
    )
    spark.range(1).count()  # start-up is reported, not counted
    ctx = StageContext(spark=spark, lake=lake, dataset="bench", run_id="bench", work_dir=folder / "work")
    start = time.perf_counter()
    result = MinHashDedup(MinHashDedup.Config(input="documents", output="deduped")).run(ctx)
    lake.write(result.tables["deduped"], "bench/deduped")
    seconds = time.perf_counter() - start
    removed = lake.dataset("bench/deduped").to_table(
        columns=["doc_id"], filter=pa.compute.field(DROP_REASON) == NEAR_DUPLICATE
    )
    print(json.dumps({"side": "ours", "seconds": seconds, "metrics": result.metrics}), file=sys.stderr)
    return set(removed.column("doc_id").to_pylist()), seconds


def run_anchor(folder: Path) -> tuple[set[str], float]:
    """datatrove's four MinhashDedup steps under LocalPipelineExecutor; returns the removed ids."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    work = folder / "datatrove"
    from datatrove.utils.hashing import HashConfig

    # datatrove's default xxhash path passes str, which xxhash 4.x refuses; its sha1 path works.
    config = MinhashConfig(
        n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1, hash_config=HashConfig(64, "sha1")
    )
    reader = JsonlReader(str(folder / "jsonl"), id_key="id")
    steps = [
        ([reader, MinhashDedupSignature(str(work / "sigs"), config=config, language="en")], FILES),
        ([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)], config.num_buckets),
        ([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)], 1),
        (
            [
                JsonlReader(str(folder / "jsonl"), id_key="id"),
                MinhashDedupFilter(str(work / "remove"), exclusion_writer=JsonlWriter(str(work / "removed"))),
                JsonlWriter(str(work / "kept")),
            ],
            FILES,
        ),
    ]
    start = time.perf_counter()
    for i, (pipeline, tasks) in enumerate(steps):
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=2,
            logging_dir=str(work / f"logs{i}"),
            skip_completed=False,
        ).run()
    seconds = time.perf_counter() - start
    removed = set()
    for path in (work / "removed").glob("*.jsonl.gz"):
        with gzip.open(path, "rt") as handle:
            removed |= {json.loads(line)["id"] for line in handle}
    return removed, seconds


def _measured(side: str, folder: Path) -> tuple[set[str], float, float]:
    """Run one side in a subprocess; (removed ids, seconds, peak RSS of its process tree in MiB)."""
    out = folder / f"{side}.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.dedup_e2e", "--side", side, str(folder), str(out)]
    )
    peak = 0
    root = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    done.set()
    thread.join()
    if code != 0:
        raise RuntimeError(f"the {side} side failed with exit code {code}")
    data = json.loads(out.read_text())
    return set(data["removed"]), data["seconds"], peak / 2**20


def _agreement(a: set[str], b: set[str]) -> float:
    return 1.0 if not a | b else len(a & b) / len(a | b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 documents (a minute or two)")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--side", choices=["ours", "anchor"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        folder, out = Path(args.paths[0]), Path(args.paths[1])
        removed, seconds = (run_ours if args.side == "ours" else run_anchor)(folder)
        out.write_text(json.dumps({"removed": sorted(removed), "seconds": seconds}))
        return
    num_docs = 4000 if args.quick else args.docs
    with tempfile.TemporaryDirectory(prefix="dedup-e2e-") as tmp:
        folder = Path(tmp)
        kinds = build_corpus(num_docs, folder)
        ours, ours_s, ours_mb = _measured("ours", folder)
        anchor, anchor_s, anchor_mb = _measured("anchor", folder)
    by_kind = {}
    for kind in ("original", "copy", "light", "heavy"):
        ids = {d for d, k in kinds.items() if k == kind}
        by_kind[kind] = {
            "docs": len(ids),
            "removed_ours": len(ours & ids),
            "removed_anchor": len(anchor & ids),
            "agreement": round(_agreement(ours & ids, anchor & ids), 4),
        }
    agreement = _agreement(ours, anchor)
    details = {
        "docs": num_docs,
        "removed_ours": len(ours),
        "removed_anchor": len(anchor),
        "removed_both": len(ours & anchor),
        "agreement_removed_jaccard": round(agreement, 4),
        "by_kind": by_kind,
        "ours_seconds": round(ours_s, 1),
        "anchor_seconds": round(anchor_s, 1),
        "peak_rss_mib_ours": round(ours_mb),
        "peak_rss_mib_anchor": round(anchor_mb),
        "spark": {"master": "local[2]", "driver.maxResultSize": "8m", "driver.memory": "1g"},
    }
    print(json.dumps(details))
    ratio = anchor_s / ours_s
    print(
        json.dumps(
            {
                "benchmark": "dedup_e2e",
                "ours": round(num_docs / ours_s, 1),
                "anchor": round(num_docs / anchor_s, 1),
                "unit": "documents/s (wall, 2 cores)",
                "ratio": round(ratio, 2),
                "target": 1.5,
                "pass": bool(ratio >= 1.5 and agreement >= 0.99),
                "details": details,
            }
        )
    )


if __name__ == "__main__":
    main()
