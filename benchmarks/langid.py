"""Language ID: every backend vs lid.176 alone on lingua's test data, accuracy and throughput in one run.

Corpus: lingua's test data (75 languages x sentences, word pairs and single
words, ~1,000 real texts each; `--per-file N` takes the first N lines of each
file). Every backend labels the same texts in the same process, in batches of
2,000, kinds in turn; accuracy is the mean over languages, on all lines and on
the report half (odd lines: the ensemble was calibrated on the even lines of
the sentences). No speed target: lingua scores every language and is ~100x
slower than lid.176; the ensemble only asks it where lid.176 is weak.

    python -m benchmarks.langid [--per-file N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from curation.langid.ensemble import LangIdConfig, lingua_detector, lingua_share
from curation.langid.evaluate import backend_languages, predict_all, score

DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "langid" / "lingua" / "language-testdata"
)
KINDS = ("sentences", "word-pairs", "single-words")
BACKENDS = ("fasttext", "ensemble", "lingua")


def texts_of(kind: str, per_file: int | None) -> tuple[list[str], list[str], list[bool]]:
    """Texts, gold labels and whether each line is in the report half (odd line of its file)."""
    texts: list[str] = []
    gold: list[str] = []
    report: list[bool] = []
    for path in sorted((DATA / kind).glob("*.txt")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        lines = lines[:per_file] if per_file else lines
        texts += lines
        gold += [path.stem] * len(lines)
        report += [i % 2 == 1 for i in range(len(lines))]
    return texts, gold, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-file", type=int, default=None, help="first N lines of each file (default: all)"
    )
    args = parser.parse_args()
    lingua_detector()
    rows: dict[str, dict] = {b: {"seconds": 0.0, "texts": 0} for b in BACKENDS}
    for kind in KINDS:
        texts, gold, report = texts_of(kind, args.per_file)
        predict_all(texts[:200], LangIdConfig(backend="lingua"))  # load lingua's models before timing
        for backend in BACKENDS:
            predicted, models, seconds = predict_all(texts, LangIdConfig(backend=backend))
            supported = backend_languages(backend)
            half = [i for i, r in enumerate(report) if r]
            every = score(gold, predicted, supported)
            held = score([gold[i] for i in half], [predicted[i] for i in half], supported)
            rows[backend][kind] = {
                "accuracy": round(every["overall"], 4),
                "accuracy_report_half": round(held["overall"], 4),
                "routed_to_lingua": round(lingua_share(models), 4),
                "texts_per_s": round(len(texts) / seconds, 1),
            }
            rows[backend]["seconds"] += seconds
            rows[backend]["texts"] += len(texts)
            print(json.dumps({"kind": kind, "backend": backend, **rows[backend][kind]}), flush=True)
    anchor = rows["fasttext"]["texts"] / rows["fasttext"]["seconds"]
    summary = {
        b: {
            "texts_per_s": round(r["texts"] / r["seconds"], 1),
            "speed_vs_lid176": round(r["texts"] / r["seconds"] / anchor, 4),
            **{kind: r[kind]["accuracy"] for kind in KINDS},
        }
        for b, r in rows.items()
    }
    print(json.dumps({"benchmark": "langid", "texts": rows["fasttext"]["texts"], "backends": summary}))


if __name__ == "__main__":
    main()
