"""How each stage's cost grows with the corpus: the main pipeline at N, 4N and 16N documents (issue 19).

Corpus per size (built from ../shared/data/web, deterministic): k*N documents of
`benchmarks.scaling_corpus` (real English page text in windows of whole lines that decide keeps, 80%
distinct documents, 15% near-duplicates, 5% exact copies, by a seeded roll per document, so the mix
does not change with k and every stage works on most rows at every size) as JSONL, plus k*C copies
of the real WARCs (`benchmarks.ingest.build_corpus`). A "fixed" run (N/32 documents and the one-page
whirlwind WARC) measures each stage's cost on an almost empty input in the same benchmark run.

Each size runs in its own process and its own Spark session (local[2], the project's defaults,
`spark.driver.maxResultSize` 64m), through the real runner (`Runner`, row accounting included):
ingest (WARC + JSONL) -> line_dedup -> annotate with decide fused -> exact_dedup -> minhash_dedup
-> quality_classifier -> pii (NER off) -> shards; then pii with NER on over a seeded sample of the
pii input (`--ner-fraction`). Per stage and size: wall seconds, seconds per 1,000 rows the stage
works on (the kept rows of its input: stages skip what an earlier stage dropped) net of the fixed
run's seconds, peak RSS of the driver's Python, of the JVM (driver and executor are one
JVM in local mode) and of the Python workers, the JVM's used heap, shuffle bytes, task count, and
the CPU seconds of the whole process tree (benchmarks/scaling_probe.py says how each is taken).

The growth factor of a stage is its net per-document cost at 16N over that at N (target <= 1.25).
The machine is shared: the load average at start and end is in the output, every figure is a
ratio inside this one run, and the CPU growth factor (net CPU seconds per document, 16N over N)
is printed beside the wall one because it moves much less with the others' load. Writes docs/scaling.md and docs/screenshots/scaling.png.

    python -m benchmarks.scaling [--docs N] [--warc-copies C] [--ner-fraction F] [--quick] [--raw FILE]
    python -m benchmarks.scaling --report-only FILE   # tables and plot again from saved figures
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks import ingest, scaling_corpus
from benchmarks.scaling_report import growth, write_report

REPO = Path(__file__).resolve().parents[1]
QUALITY_DATA = REPO / "samples" / "quality" / "dclm" / "majority_minus_agreement.jsonl"
MAX_RESULT_SIZE = "64m"
SCALES = (("N", 1), ("4N", 4), ("16N", 16))
FIXED_DIVISOR = 32


def job_spec(folder: Path, model: Path) -> dict:
    """The main pipeline over one size's corpus (the demo job's chain without images and augment)."""
    return {
        "name": "scaling",
        "lake": str(folder / "lake"),
        "stages": [
            {
                "stage": "ingest",
                "params": {
                    "inputs": [
                        {"name": "crawl", "path": str(folder / "warcs"), "format": "warc"},
                        {
                            "name": "web-text",
                            "path": str(folder / "jsonl" / "*.jsonl.gz"),
                            "format": "jsonl",
                            "options": {"id_field": "id"},
                        },
                    ]
                },
            },
            {"stage": "line_dedup", "params": {"input": "documents", "output": "lined", "min_docs": 5}},
            {
                "stage": "annotate",
                "params": {
                    "input": "lined",
                    "output": "decided",
                    "annotators": ["langid", "gopher", "c4", "fineweb", "minhash"],
                    "signal_languages": ["en"],
                    # the rules the corpus was drawn with (scaling_corpus keeps the windows these keep)
                    "decide": scaling_corpus.DECIDE,
                },
            },
            {"stage": "exact_dedup", "params": {"input": "decided", "output": "deduped"}},
            {
                "stage": "minhash_dedup",
                "params": {
                    "input": "deduped",
                    "output": "deduped",
                    "threshold": 0.7,
                    "reuse_signatures": True,
                },
            },
            {
                "stage": "quality_classifier",
                "params": {"input": "deduped", "output": "scored", "model": str(model), "threshold": 0.05},
            },
            {
                "stage": "pii",
                "params": {"input": "scored", "output": "curated", "ner": False, "dropped": "withhold"},
            },
            {
                "stage": "shards",
                "params": {
                    "input": "curated",
                    "name": "default",
                    "shard_tokens": 65536,
                    "validation_fraction": 0.05,
                },
            },
        ],
    }


def _session(folder: Path):
    """local[2] with the project's defaults, a small maxResultSize and an event log for shuffle bytes."""
    from pipelines.framework.spark import get_spark

    events = folder / "events"
    events.mkdir()
    conf = {
        "spark.driver.maxResultSize": MAX_RESULT_SIZE,
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    return get_spark("local[2]", conf, ui=False, app_name="bench-scaling")


def _ner_run(spark, lake_root: Path, fraction: float) -> tuple[float, float, int]:
    """pii with NER on over a seeded sample of the pii input: (start, end, rows)."""
    import pyarrow.compute as pc

    from pii.stage import PiiConfig, PiiStage
    from pipelines.framework.drop_reason import DROP_REASON
    from pipelines.framework.lake import Lake
    from pipelines.framework.stage import StageContext

    lake = Lake(lake_root)
    ctx = StageContext(spark=spark, lake=lake, dataset="scaling", run_id="ner", work_dir=lake_root / "ner")
    sample = lake.read(spark, ctx.table("scored")).sample(fraction=fraction, seed=0)
    lake.write(sample, ctx.table("ner_input"))
    rows = lake.dataset(ctx.table("ner_input")).count_rows(filter=pc.field(DROP_REASON).is_null())
    start = time.time()
    config = PiiConfig(input="ner_input", output="ner_curated", ner=True, dropped="withhold")
    for name, df in PiiStage(config).run(ctx).tables.items():
        lake.write(df, ctx.table(name))
    return start, time.time(), rows


def _stamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _worked_rows(record) -> list[int]:
    """Rows each stage works on: the kept rows of its input, i.e. the previous stage's kept output.

    Stages skip rows an earlier stage dropped, so dividing by the corpus size would charge a stage
    for documents it never touches; the chain is linear (each stage reads the one before).
    """
    rows = [record.stages[0].rows_out["documents"]]
    for previous in record.stages[:-1]:
        rows.append(previous.kept if previous.kept is not None else rows[-1])
    return rows


def run_size(folder: Path, model: Path, ner_fraction: float, out: Path) -> None:
    """One size in this process: the job through the runner, then NER on; writes the figures as JSON."""
    from benchmarks.scaling_probe import (
        TreeSampler,
        cpu_between,
        jvm_heap_used,
        peaks,
        shuffle_in,
        task_shuffle,
    )
    from pipelines.framework.runner import Runner
    from pipelines.framework.spec import parse_spec

    begun = time.perf_counter()
    spark = _session(folder)
    spark.range(1).count()
    startup = time.perf_counter() - begun
    spec, stages = parse_spec(job_spec(folder, model), "scaling")
    with TreeSampler(jvm_heap_used(spark)) as sampler:
        record = Runner(spec, stages, spark=spark, progress=False).run()
        ner = _ner_run(spark, folder / "lake", ner_fraction)
    spark.stop()
    tasks = task_shuffle(folder / "events")
    docs = record.stages[0].rows_out["documents"]
    worked = _worked_rows(record)
    windows = [
        (s.stage, _stamp(s.started_at), _stamp(s.ended_at), n)
        for s, n in zip(record.stages, worked, strict=True)
    ]
    windows.append(("pii (NER on, sample)", ner[0], ner[1], ner[2]))
    rows = [
        {
            "stage": name,
            "docs": count,
            "seconds": round(end - start, 2),
            "cpu_s": cpu_between(sampler.samples, start, end),
            "peak_mib": peaks(sampler.samples, start, end),
            **shuffle_in(tasks, start, end),
        }
        for name, start, end, count in windows
    ]
    whole = peaks(sampler.samples, 0, float("inf"))
    out.write_text(
        json.dumps({"docs": docs, "startup_s": round(startup, 1), "stages": rows, "peak_mib": whole})
    )


def build_size(folder: Path, docs: int, warc_copies: int) -> None:
    """One size's input: `docs` JSONL documents and `warc_copies` copies of the real WARCs."""
    kinds = scaling_corpus.build_corpus(docs, folder)
    print(f"{folder.name}: corpus {kinds}", file=sys.stderr, flush=True)
    (folder / "warcs").mkdir()
    if warc_copies:
        ingest.build_corpus(folder / "warcs", warc_copies)
    else:  # the fixed run: one real one-page WARC, so the WARC reader still starts
        shutil.copyfile(ingest.DATA / ingest.WARCS[-1], folder / "warcs" / Path(ingest.WARCS[-1]).name)


def train_model(folder: Path) -> Path:
    """The quality classifier the demo job uses, trained from the DCLM-labelled sample (not timed)."""
    from curation.quality.model import read_labeled, train

    model = folder / "quality.bin"
    texts, labels = read_labeled(QUALITY_DATA)
    train(texts, labels, model, source=str(QUALITY_DATA))
    return model


def measure(name: str, folder: Path, model: Path, ner_fraction: float) -> dict:
    """Run one size in a fresh process (its own JVM and workers: no warm caches carried over)."""
    out = folder / "figures.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.scaling",
        "--size-run",
        str(folder),
        str(model),
        str(ner_fraction),
    ]
    start = time.perf_counter()
    subprocess.run([*cmd, str(out)], check=True)
    result = json.loads(out.read_text())
    print(
        f"{name}: {result['docs']} documents in {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return result


def measure_all(n: int, copies: int, ner_fraction: float) -> dict[str, dict]:
    """16N, 4N, N, then the fixed run, each on its own freshly built corpus."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        model = train_model(Path(tmp))
        sizes = [("fixed", max(16, n // FIXED_DIVISOR), 0), *((s, k * n, k * copies) for s, k in SCALES)]
        # Largest first: on a shared machine whose load falls (others finishing), the small sizes then
        # run faster, which can only overstate growth, never hide it.
        for name, docs, warcs in reversed(sizes):
            folder = Path(tmp) / name
            build_size(folder, docs, warcs)
            results[name] = measure(name, folder, model, ner_fraction)
    return results


def report(run: dict, out: Path) -> None:
    """Tables and plot from the raw figures; the JSON last line names the worst stage."""
    factors = growth(run["results"])
    write_report(run["results"], factors, run["settings"], run["load"], out)
    measured = {s: f["growth"] for s, f in factors.items() if f["growth"] is not None}
    worst = max(measured, key=measured.__getitem__)
    print(
        json.dumps(
            {
                "benchmark": "scaling",
                "worst_stage": worst,
                "worst_growth": measured[worst],
                "unit": "net per-document cost at 16N / at N",
                "target": 1.25,
                "pass": measured[worst] <= 1.25,
                "growth": {s: f["growth"] for s, f in factors.items()},
                "raw_growth": {s: f["raw_growth"] for s, f in factors.items()},
                "cpu_growth": {s: f["cpu_growth"] for s, f in factors.items()},
                "settings": run["settings"],
                "load_avg": run["load"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="N: corpus documents at the smallest size")
    parser.add_argument("--warc-copies", type=int, default=1, help="C: copies of the real WARCs at size N")
    parser.add_argument("--ner-fraction", type=float, default=0.1, help="sample of the pii input for NER on")
    parser.add_argument("--quick", action="store_true", help="N=256, C=1: a smoke run")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where scaling.md and the plot go")
    parser.add_argument("--raw", type=Path, help="also save the raw figures here (JSON)")
    parser.add_argument("--report-only", type=Path, help="redo the report from figures saved with --raw")
    parser.add_argument("--size-run", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size_run:
        folder, model, fraction, out = args.size_run
        run_size(Path(folder), Path(model), float(fraction), Path(out))
        return
    if args.report_only:
        report(json.loads(args.report_only.read_text()), args.out)
        return
    n, copies = (256, 1) if args.quick else (args.docs, args.warc_copies)
    load_start = os.getloadavg()
    results = measure_all(n, copies, args.ner_fraction)
    run = {
        "results": results,
        "settings": {
            "N": n,
            "warc_copies_at_N": copies,
            "ner_fraction": args.ner_fraction,
            "maxResultSize": MAX_RESULT_SIZE,
        },
        "load": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
    }
    if args.raw:
        args.raw.write_text(json.dumps(run))
    report(run, args.out)


if __name__ == "__main__":
    main()
