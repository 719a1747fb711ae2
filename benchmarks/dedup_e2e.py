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
the two removed sets, also given per kind of document. Our side also samples itself
(benchmarks.scaling_probe) over the timed stage: driver Python, JVM and Python workers apart.
The Delta table is written by the parent before our side starts (datatrove's input, the JSONL,
likewise exists before its side starts), so neither measured process holds the whole corpus.
Run: python -m benchmarks.dedup_e2e [--quick] [--docs N] [--ours-only] [--save-removed F] [--event-log DIR] [--conf K=V]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from benchmarks.minhash_kernel import load_web_texts

SEGMENT_WORDS = 200
FILES = 2


def corpus_rows(num_docs: int, seed: int = 0, mixed: bool = False) -> Iterator[tuple[str, str, str]]:
    """(doc_id, kind, text) of every document in id order; kind is original, copy, light or heavy.

    `mixed` shuffles the segments before the first num_docs // 8 are taken, so that every size
    draws from all pages (languages) alike (benchmarks/scaling.py); by default they come in page order.
    A corpus's first n documents are the corpus of n documents whenever both sizes take every
    segment (n >= 8 x the 8,559 segments in page order): benchmarks.dedup_million relies on it.
    """
    rng = random.Random(seed)
    segments = []
    for text in load_web_texts():
        words = text.split()
        segments += [" ".join(words[i : i + SEGMENT_WORDS]) for i in range(0, len(words) - 50, SEGMENT_WORDS)]
    if mixed:
        random.Random(seed).shuffle(segments)
    segments = segments[: max(1, num_docs // 8)]  # about 8 passes, so that every size has copies
    vocabularies = [segment.split() or ["x"] for segment in segments]  # split once, not per replaced word
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
                    words[j] = rng.choice(vocabularies[rng.randrange(len(segments))])
            text = " ".join(words)
        yield f"d{i:07d}", kind, text


def build_corpus(num_docs: int, folder: Path, seed: int = 0, mixed: bool = False) -> dict[str, str]:
    """Write the JSONL corpus under folder/jsonl; return doc_id -> kind (original, copy, light, heavy)."""
    kinds: dict[str, str] = {}
    (folder / "jsonl").mkdir(parents=True)
    per_file = -(-num_docs // FILES)
    lines: list[list[str]] = [[] for _ in range(FILES)]
    for i, (doc_id, kind, text) in enumerate(corpus_rows(num_docs, seed, mixed)):
        kinds[doc_id] = kind
        lines[i // per_file].append(json.dumps({"id": doc_id, "text": text}) + "\n")
    for f, chunk in enumerate(lines):
        with gzip.open(folder / "jsonl" / f"part-{f}.jsonl.gz", "wt", encoding="utf-8") as out:
            out.writelines(chunk)
    return kinds


OURS_CONF = {
    "spark.driver.maxResultSize": "8m",
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "8",
}


def write_documents(folder: Path) -> None:
    """The JSONL corpus as the Delta table `bench/documents`: our side's input, written before it starts.

    Written by the parent so that neither side's measured process holds the whole corpus in memory
    (datatrove's input is the JSONL as is).
    """
    import pyarrow.json as pj

    from pipelines.framework.lake import Lake

    lake = Lake(folder / "lake")
    for i, path in enumerate(sorted((folder / "jsonl").glob("*.jsonl.gz"))):
        # a path, not a Python file object: Arrow's reader threads then never call back into Python
        docs = pj.read_json(str(path)).rename_columns(["doc_id", "text"])
        lake.write_arrow(docs, "bench/documents", mode="append" if i else "overwrite")


def run_ours(folder: Path, removed_below: str | None = None, conf: dict[str, str] | None = None) -> dict:
    """The minhash_dedup stage over `bench/documents`: seconds, metrics, memory peaks, removed ids.

    Memory is sampled inside this process (benchmarks.scaling_probe): the driver's Python, the JVM
    and the Python workers apart, over the timed window only. `removed_below` keeps the removed ids
    smaller than it (a sample of a large run); the removed count is always of the whole table.
    """
    import pyarrow.compute as pc

    from benchmarks.scaling_probe import TreeSampler, jvm_heap_used, peaks
    from dedup.near_duplicates import NEAR_DUPLICATE
    from dedup.stages import MinHashDedup
    from pipelines.framework.drop_reason import DROP_REASON
    from pipelines.framework.lake import Lake
    from pipelines.framework.spark import get_spark
    from pipelines.framework.stage import StageContext

    lake = Lake(folder / "lake")
    spark = get_spark("local[2]", {**OURS_CONF, **(conf or {})}, ui=False, app_name="bench-dedup-e2e")
    spark.range(1).count()  # start-up is reported, not counted
    ctx = StageContext(spark=spark, lake=lake, dataset="bench", run_id="bench", work_dir=folder / "work")
    with TreeSampler(jvm_heap_used(spark)) as sampler:
        start = time.time()
        result = MinHashDedup(MinHashDedup.Config(input="documents", output="deduped")).run(ctx)
        lake.write(result.tables["deduped"], "bench/deduped")
        end = time.time()
    spark.stop()
    removed = pc.field(DROP_REASON) == NEAR_DUPLICATE
    count = lake.dataset("bench/deduped").count_rows(filter=removed)
    if removed_below is not None:
        removed = removed & (pc.field("doc_id") < removed_below)
    ids = lake.dataset("bench/deduped").to_table(columns=["doc_id"], filter=removed).column("doc_id")
    memory = peaks(sampler.samples, start, end)
    print(json.dumps({"side": "ours", "seconds": end - start, "metrics": result.metrics}), file=sys.stderr)
    return {
        "removed": ids.to_pylist(),
        "removed_count": count,
        "seconds": end - start,
        "memory_mib": memory,
        "timeline": timeline(sampler.samples, start, end),
    }


def timeline(samples: list, start: float, end: float, points: int = 600) -> list[list[float]]:
    """[seconds since start, driver Python, JVM, workers' PSS, used heap] (MiB) over the timed window,
    thinned to about `points` samples: enough to show whether memory levels off, small enough to keep."""
    inside = [s for s in samples if start <= s.at <= end]
    step = max(1, len(inside) // points)
    return [
        [round(s.at - start, 1), round(s.driver_py), round(s.jvm), round(s.workers_pss), round(s.heap)]
        for s in inside[::step]
    ]


def side_conf(args: argparse.Namespace) -> dict[str, str]:
    """Our side's Spark settings beyond OURS_CONF: `--conf` pairs and the event log."""
    conf = dict(pair.split("=", 1) for pair in args.conf)
    if args.event_log:
        conf |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": args.event_log}
    return conf


def run_anchor(folder: Path) -> dict:
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
    return {"removed": sorted(removed), "seconds": seconds}


def measured(side: str, folder: Path, module: str = "benchmarks.dedup_e2e", *extra: str) -> tuple[dict, dict]:
    """Run one side in a subprocess (`python -m module --side side folder out *extra`, faulthandler on);
    (its result, its memory: peak summed RSS of its process tree in MiB and what made up that peak).

    The composition is kept, and the peak without JVM helpers beside it (`_tree_rss`): Spark runs
    `rm -rf` on its temporary folders at stop, Hadoop's local filesystem runs `chmod` and `ls`.
    """
    out = folder / f"{side}.json"
    command = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        module,
        "--side",
        side,
        str(folder),
        str(out),
        *extra,
    ]
    proc = subprocess.Popen(command)
    peak: dict = {"mib": 0.0, "mib_without_jvm_helpers": 0.0, "parts": []}
    root = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            parts = _tree_rss(root)
            total = sum(rss for _, _, rss, _ in parts)
            if total > peak["mib"]:
                peak.update(mib=total, parts=[f"{pid} {name} {round(rss)}" for pid, name, rss, _ in parts])
            own = sum(rss for _, _, rss, helper in parts if not helper)
            peak["mib_without_jvm_helpers"] = max(peak["mib_without_jvm_helpers"], own)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    done.set()
    thread.join()
    if code != 0:
        raise RuntimeError(f"the {side} side failed with exit code {code}")
    return json.loads(out.read_text()), peak


def _tree_rss(root: psutil.Process) -> list[tuple[int, str, float, bool]]:
    """(pid, name, RSS MiB, is a JVM helper) of every process in root's tree.

    A helper is a non-Python child of the JVM (`rm`, `chmod`, `ls`, jspawnhelper): spawned with
    vfork, it shares the JVM's memory until it execs, so /proc may show it with the JVM's RSS.
    """
    parts = []
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            helper = not p.name().startswith("python") and p.parent().name().startswith("java")
            parts.append((p.pid, p.name(), p.memory_info().rss / 2**20, helper))
    return parts


def agreement(a: set[str], b: set[str]) -> float:
    """Jaccard index of two removed sets (1 when both are empty)."""
    return 1.0 if not a | b else len(a & b) / len(a | b)


def _by_kind(kinds: dict[str, str], ours: set[str], anchor: set[str]) -> dict[str, dict]:
    by_kind = {}
    for kind in ("original", "copy", "light", "heavy"):
        ids = {d for d, k in kinds.items() if k == kind}
        by_kind[kind] = {
            "docs": len(ids),
            "removed_ours": len(ours & ids),
            "removed_anchor": len(anchor & ids),
            "agreement": round(agreement(ours & ids, anchor & ids), 4),
        }
    return by_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 documents (a minute or two)")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--ours-only", action="store_true", help="our side only (profiling, crash loops)")
    parser.add_argument("--save-removed", type=Path, help="write both removed sets here (JSON)")
    parser.add_argument("--event-log", help="a folder for our side's Spark event log (profiling)")
    parser.add_argument(
        "--conf", action="append", default=[], help="KEY=VALUE over our side's Spark settings"
    )
    parser.add_argument("--side", choices=["ours", "anchor"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        folder, out = Path(args.paths[0]), Path(args.paths[1])
        result = run_ours(folder, conf=side_conf(args)) if args.side == "ours" else run_anchor(folder)
        out.write_text(json.dumps(result))
        return
    num_docs = 4000 if args.quick else args.docs
    passed = [
        *(["--event-log", args.event_log] if args.event_log else []),
        *(f"--conf={c}" for c in args.conf),
    ]
    with tempfile.TemporaryDirectory(prefix="dedup-e2e-") as tmp:
        folder = Path(tmp)
        kinds = build_corpus(num_docs, folder)
        write_documents(folder)
        ours, ours_mem = measured("ours", folder, "benchmarks.dedup_e2e", *passed)
        anchor, anchor_mem = (
            ({"removed": [], "seconds": float("nan")}, {"mib": 0.0, "parts": []})
            if args.ours_only
            else measured("anchor", folder)
        )
    removed = {"ours": set(ours["removed"]), "anchor": set(anchor["removed"])}
    if args.save_removed:
        args.save_removed.write_text(json.dumps({k: sorted(v) for k, v in removed.items()}))
    jaccard = agreement(removed["ours"], removed["anchor"])
    details = {
        "docs": num_docs,
        "removed_ours": len(removed["ours"]),
        "removed_anchor": len(removed["anchor"]),
        "removed_both": len(removed["ours"] & removed["anchor"]),
        "agreement_removed_jaccard": round(jaccard, 4),
        "by_kind": _by_kind(kinds, removed["ours"], removed["anchor"]),
        "ours_seconds": round(ours["seconds"], 1),
        "anchor_seconds": round(anchor["seconds"], 1),
        "peak_rss_mib_ours": round(ours_mem["mib"]),
        "peak_rss_mib_anchor": round(anchor_mem["mib"]),
        "peak_rss_mib_ours_without_jvm_helpers": round(ours_mem["mib_without_jvm_helpers"]),
        "peak_parts_ours": ours_mem["parts"],
        "peak_parts_anchor": anchor_mem["parts"],
        "ours_peaks_mib_in_stage": ours["memory_mib"],
        "spark": {"master": "local[2]", **OURS_CONF, **side_conf(args)},
    }
    print(json.dumps(details))
    ratio = anchor["seconds"] / ours["seconds"]
    print(
        json.dumps(
            {
                "benchmark": "dedup_e2e",
                "ours": round(num_docs / ours["seconds"], 1),
                "anchor": round(num_docs / anchor["seconds"], 1),
                "unit": "documents/s (wall, 2 cores)",
                "ratio": round(ratio, 2),
                "target": 1.5,
                "pass": bool(ratio >= 1.5 and jaccard >= 0.99),
                "details": details,
            }
        )
    )


if __name__ == "__main__":
    main()
