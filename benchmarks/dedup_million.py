"""Near-dedup at a million documents on Spark local[2]: wall time, peak memory, removed fraction, agreement.

Corpus: benchmarks.dedup_e2e's (real page text in 200-word segments, the first pass the
originals with their natural duplicates, later passes seeded copies, light and heavy edits),
at 1,000,000 documents, written straight to the Delta table in chunks by this (parent)
process, which is not measured. Our side runs in its own subprocess with dedup_e2e's settings
(local[2], spark.driver.memory=1g, spark.driver.maxResultSize=8m); its memory is sampled per
part (driver Python, JVM, Python workers: benchmarks.scaling_probe) over the timed window, and
as the summed RSS of its process tree over its whole life.

Agreement with the single-node reference on a 100,000-document sample: with 8,559 segments
every corpus of >= 68,472 documents takes them all, so the first 100,000 documents of this
corpus are exactly dedup_e2e's 100,000-document corpus. `--reference` is the file
`dedup_e2e --docs 100000 --save-removed` wrote: datatrove's removed ids over that corpus (and
ours). Because the smallest id of a cluster is kept, a document of the first 100,000 is removed
in the large run iff its cluster holds a smaller id, which lies in the sample too; the sample's
removed set can only differ where a cluster's members are linked through documents after it.
The anchor is not run at a million documents (over an hour on 2 cores).
`--plot` draws the memory of our side over the timed window (driver Python, JVM, the workers'
PSS, the JVM's used heap against its cap): the figure that shows memory levels off while the
documents keep coming.
Run: python -m benchmarks.dedup_million [--docs N] [--reference removed-100k.json] [--save-removed F]
[--plot docs/screenshots/dedup_million.png]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa

from benchmarks.dedup_e2e import OURS_CONF, agreement, corpus_rows, measured, run_ours

CHUNK = 100_000
SAMPLE = 100_000


def write_corpus(num_docs: int, folder: Path) -> Counter[str]:
    """The corpus as the Delta table `bench/documents`, CHUNK documents per commit; counts per kind."""
    from pipelines.framework.lake import Lake

    lake = Lake(folder / "lake")
    kinds: Counter[str] = Counter()
    ids: list[str] = []
    texts: list[str] = []

    def flush(first: bool) -> None:
        table = pa.table({"doc_id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())})
        lake.write_arrow(table, "bench/documents", mode="overwrite" if first else "append")
        ids.clear()
        texts.clear()

    for i, (doc_id, kind, text) in enumerate(corpus_rows(num_docs)):
        kinds[kind] += 1
        ids.append(doc_id)
        texts.append(text)
        if len(ids) == CHUNK:
            flush(i < CHUNK)
    if ids:
        flush(num_docs <= CHUNK)
    return kinds


def _sample_agreement(removed: set[str], reference: Path | None) -> dict:
    """Removed-set Jaccard on the first SAMPLE documents against the reference file's sets."""
    if reference is None:
        return {"reference": "none given"}
    sets = json.loads(reference.read_text())
    return {
        f"jaccard_vs_{side}_at_{SAMPLE}": round(agreement(removed, set(ids)), 4) for side, ids in sets.items()
    } | {"removed_in_sample": len(removed), **{f"removed_{s}_at_{SAMPLE}": len(i) for s, i in sets.items()}}


def plot_memory(timeline: list[list[float]], docs: int, heap_cap_mib: float, path: Path) -> None:
    """Each part's RSS, their sum and the used heap over the run's seconds; the heap's cap as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    at, *parts = (list(column) for column in zip(*timeline, strict=True))
    labels = ["driver Python", "JVM (driver + executor)", "Python workers (PSS)", "JVM heap used"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(at, [sum(values) for values in zip(*parts[:3], strict=True)], linewidth=2, label="all three")
    for values, label in zip(parts, labels, strict=True):
        ax.plot(at, values, linewidth=1, label=label)
    ax.axhline(heap_cap_mib, color="black", linestyle="--", linewidth=1, label="heap cap")
    ax.set(xlabel="seconds into the near-dedup stage", ylabel="MiB")
    ax.set_title(f"near-dedup of {docs:,} documents on local[2]: memory over the run")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mib(setting: str) -> float:
    """A JVM size setting ("1g", "512m") in MiB."""
    units = {"g": 1024, "m": 1}
    return float(setting[:-1]) * units[setting[-1].lower()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--reference", type=Path, help="dedup_e2e --save-removed file at 100,000 documents")
    parser.add_argument("--save-removed", type=Path, help="write our removed ids of the sample here (JSON)")
    parser.add_argument("--plot", type=Path, help="write the memory-over-time plot here (PNG)")
    parser.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        folder, out = Path(args.paths[0]), Path(args.paths[1])
        out.write_text(json.dumps(run_ours(folder, removed_below=f"d{SAMPLE:07d}")))
        return
    with tempfile.TemporaryDirectory(prefix="dedup-million-") as tmp:
        folder = Path(tmp)
        kinds = write_corpus(args.docs, folder)
        ours, tree = measured("ours", folder, "benchmarks.dedup_million")
    if args.save_removed:
        args.save_removed.write_text(json.dumps(ours["removed"]))
    sample = _sample_agreement(set(ours["removed"]), args.reference)
    if args.plot:
        plot_memory(ours["timeline"], args.docs, _mib(OURS_CONF["spark.driver.memory"]), args.plot)
    details = {
        "docs": args.docs,
        "kinds": dict(kinds),
        "removed": ours["removed_count"],
        "removed_fraction": round(ours["removed_count"] / args.docs, 4),
        "seconds": round(ours["seconds"], 1),
        "peaks_mib_in_stage": ours["memory_mib"],
        "peak_rss_mib_process_tree": round(tree["mib"]),
        "peak_rss_mib_without_jvm_helpers": round(tree["mib_without_jvm_helpers"]),
        "peak_parts": tree["parts"],
        "sample": sample,
        "spark": {"master": "local[2]", **OURS_CONF},
    }
    print(
        json.dumps(
            {
                "benchmark": "dedup_million",
                "ours": round(args.docs / ours["seconds"], 1),
                "unit": "documents/s (wall, 2 cores)",
                "details": details,
            }
        )
    )


if __name__ == "__main__":
    main()
