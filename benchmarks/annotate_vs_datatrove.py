"""Fused annotate + decide through Spark vs datatrove's filter chain, same documents, same 2 cores.

Corpus (real web text, built from ../shared/data): the 1,033 trafilatura evaluation
pages, extracted with trafilatura (cached under ~/.cache/refinery), then cycled and
perturbed to the requested size: copy 0 is the page itself; copy c > 0 keeps a
random contiguous window of 50-100% of its lines and drops ~5% of the rest at
random (seeded by copy and page), so copies differ as crawled variants of a page do.

Ours: one `annotate` scan with decide fused (`decide: {}`: language en > 0.65, gopher +
c4 + fineweb presets) and `signal_languages: [en]` (signals only where decide can keep
the document, as datatrove's chain runs its quality filters only on what the language
filter kept), Spark local[2], reading a Delta documents table and committing the
decided table.
Anchor: datatrove 0.10.1 LanguageFilter(en, 0.65) -> GopherQualityFilter ->
GopherRepetitionFilter -> FineWebQualityFilter -> C4QualityFilter under
LocalPipelineExecutor(tasks=2, workers=2) reading the same documents as JSONL.
C4 goes last because it rewrites the text it keeps, which would change what a
later filter sees; our signals are all computed on the original text.
Both use the same lid.176.ftz (datatrove would otherwise download lid.176.bin).

    python -m benchmarks.annotate_vs_datatrove [--docs 50000] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAGES = SHARED / "web" / "trafilatura_eval" / "trafilatura_tests.tar.xz"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "refinery"


def extracted_pages() -> list[dict]:
    """Main text of every trafilatura evaluation page (extracted once, then cached by archive hash)."""
    digest = hashlib.sha256(PAGES.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"trafilatura_pages_{digest}.jsonl"
    if cached.exists():
        return [json.loads(line) for line in cached.read_text().splitlines()]
    import trafilatura

    pages = []
    with tarfile.open(PAGES) as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".html"):
                html = archive.extractfile(member).read().decode("utf-8", "replace")
                text = trafilatura.extract(html, favor_recall=True)
                if text:
                    pages.append({"page": Path(member.name).name, "text": text})
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text("".join(json.dumps(p) + "\n" for p in pages))
    return pages


def perturbed(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    size = max(1, int(len(lines) * rng.uniform(0.5, 1.0)))
    start = rng.randrange(0, len(lines) - size + 1)
    return "\n".join(line for line in lines[start : start + size] if rng.random() >= 0.05)


def corpus(n_docs: int) -> list[dict]:
    pages = extracted_pages()
    docs = []
    for i in range(n_docs):
        copy, page = divmod(i, len(pages))
        text = pages[page]["text"]
        if copy:
            text = perturbed(text, random.Random(copy * 100_003 + page))
        docs.append(
            {
                "doc_id": f"doc{i:07d}",
                "uri": f"https://example.org/{pages[page]['page']}/{copy}",
                "text": text,
            }
        )
    return docs


def run_ours(
    docs_jsonl: Path, work: Path, langid_backend: str | None, languages: Sequence[str] = ("en",)
) -> tuple[float, float, dict[str, str | None]]:
    from curation.annotate.stage import Annotate
    from pipelines.framework.drop_reason import DROP_REASON
    from pipelines.framework.lake import Lake
    from pipelines.framework.spark import get_spark
    from pipelines.framework.stage import StageContext

    t0 = time.perf_counter()
    spark = get_spark("local[2]", conf={"spark.sql.shuffle.partitions": "4"}, ui=False)
    startup = time.perf_counter() - t0
    lake = Lake(work / "lake")
    lake.write(spark.read.json(str(docs_jsonl)).repartition(16), "bench/documents")
    ctx = StageContext(spark=spark, lake=lake, dataset="bench", run_id="bench", work_dir=work)
    start = time.perf_counter()
    langid = {} if langid_backend is None else {"backend": langid_backend}
    annotators = [{"langid": langid}, "gopher", "c4", "fineweb"]
    config = Annotate.Config(
        output="decided",
        annotators=annotators,
        signal_languages=list(languages),
        decide={"languages": list(languages)},
    )
    stage = Annotate(config)
    for name, df in stage.run(ctx).tables.items():
        lake.write(df, ctx.table(name))
    elapsed = time.perf_counter() - start
    decided = lake.dataset("bench/decided").to_table(columns=["doc_id", DROP_REASON])
    reasons = dict(
        zip(decided.column("doc_id").to_pylist(), decided.column(DROP_REASON).to_pylist(), strict=True)
    )
    spark.stop()
    return elapsed, startup, reasons


def language_filter(lid_path: Path, languages: Sequence[str]):
    """datatrove's LanguageFilter on our lid.176 file (it would otherwise download lid.176.bin)."""
    from datatrove.pipeline.filters import LanguageFilter

    language = LanguageFilter(languages=list(languages), language_threshold=0.65)
    language.model.MODEL_URL = f"file://{lid_path}"
    return language


def datatrove_pipeline(lid_path: Path):
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.filters.c4_filters import C4QualityFilter
    from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter

    return [
        language_filter(lid_path, ["en"]),
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        FineWebQualityFilter(),
        C4QualityFilter(),
    ]


def run_anchor(input_dir: Path, work: Path, filters: list | None = None) -> tuple[float, set[str]]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from curation.langid.lid176 import default_model_path

    out = work / "datatrove_out"
    pipeline = [
        JsonlReader(str(input_dir), id_key="doc_id"),
        *(filters or datatrove_pipeline(default_model_path())),
        JsonlWriter(str(out), compression=None),
    ]
    executor = LocalPipelineExecutor(pipeline, tasks=2, workers=2, logging_dir=str(work / "datatrove_logs"))
    start = time.perf_counter()
    executor.run()
    elapsed = time.perf_counter() - start
    kept = set()
    for path in out.glob("*.jsonl"):
        kept |= {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}
    return elapsed, kept


def explain(doc: dict, filters: list | None = None) -> str:
    """datatrove's reason for one document (run in-process, for the disagreement list)."""
    from datatrove.data import Document

    from curation.langid.lid176 import default_model_path

    d = Document(text=doc["text"], id=doc["doc_id"])
    for step in filters or datatrove_pipeline(default_model_path()):
        result = step.filter(d)
        if result is not True and result is not None:
            return result[1] if isinstance(result, tuple) else f"{type(step).__name__}"
    return "kept"


def print_result(benchmark: str, n_docs: int, ours_s: float, anchor_s: float, agreement: float) -> None:
    """The JSON last line both annotate benchmarks end with: throughput ratio at a given agreement."""
    ours_dps, anchor_dps = n_docs / ours_s, n_docs / anchor_s
    ratio = ours_dps / anchor_dps
    result = {
        "benchmark": benchmark,
        "ours": round(ours_dps, 1),
        "anchor": round(anchor_dps, 1),
        "unit": "docs/s (2 cores)",
        "ratio": round(ratio, 3),
        "agreement": round(agreement, 5),
        "target": 2.0,
        "pass": ratio >= 2.0 and agreement >= 0.99,
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="3,000 documents")
    parser.add_argument(
        "--langid-backend",
        choices=["fasttext", "ensemble", "lingua"],
        help="annotate's language ID (default: the stage's default); fasttext is the anchor's own model",
    )
    args = parser.parse_args()
    n_docs = 3_000 if args.quick else args.docs
    docs = corpus(n_docs)
    work = Path(tempfile.mkdtemp(prefix="bench_annotate_"))
    try:
        input_dir = work / "input"
        input_dir.mkdir()
        for part in range(4):  # several files so that datatrove's 2 tasks split the input evenly
            with (input_dir / f"part{part}.jsonl").open("w") as handle:
                handle.writelines(json.dumps(d) + "\n" for d in docs[part::4])
        ours_s, startup_s, reasons = run_ours(input_dir, work, args.langid_backend)
        anchor_s, anchor_kept = run_anchor(input_dir, work)
        ours_kept = {doc_id for doc_id, reason in reasons.items() if reason is None}
        differ = sorted(ours_kept ^ anchor_kept)
        agreement = 1 - len(differ) / n_docs
        by_id = {d["doc_id"]: d for d in docs}
        listed = [
            {"doc_id": i, "ours": reasons.get(i) or "kept", "datatrove": explain(by_id[i])}
            for i in differ[:200]
        ]
        print(
            json.dumps(
                {
                    "documents": n_docs,
                    "spark_startup_s": round(startup_s, 1),
                    "ours_s": round(ours_s, 1),
                    "anchor_s": round(anchor_s, 1),
                    "kept_ours": len(ours_kept),
                    "kept_anchor": len(anchor_kept),
                    "agreement": agreement,
                    "disagreements": listed,
                }
            )
        )
        print_result("annotate_vs_datatrove", n_docs, ours_s, anchor_s, agreement)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
