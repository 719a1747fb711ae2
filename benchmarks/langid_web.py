"""Default language-ID backend vs lid.176 alone on real web documents, and how often lingua is asked.

Corpus: the documents of `benchmarks.annotate_vs_datatrove` (trafilatura's 1,033
evaluation pages, extracted, then cycled and perturbed to `--docs`). Web pages
are long and mostly in languages lid.176 knows well, so the ensemble should
rarely need its second model: the share routed to lingua is reported, and
label agreement with lid.176 alone (where they differ, lingua overruled it).
Both sides run in this process, interleaved, on the same batches.

    python -m benchmarks.langid_web [--docs 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.annotate_vs_datatrove import corpus
from curation.langid.ensemble import LangIdConfig, langid_columns, lingua_detector, lingua_share

BATCH = 1000
TARGET = 0.5


def timed(texts: list[str], config: LangIdConfig) -> tuple[float, list[str | None], list[str | None]]:
    start = time.perf_counter()
    langs: list[str | None] = []
    models: list[str | None] = []
    for i in range(0, len(texts), BATCH):
        columns = langid_columns(texts[i : i + BATCH], config)
        langs += columns[0].to_pylist()
        models += columns[2].to_pylist()
    return time.perf_counter() - start, langs, models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = [d["text"] for d in corpus(args.docs)]
    default, anchor = LangIdConfig(), LangIdConfig(backend="fasttext")
    lingua_detector()
    timed(texts[:BATCH], default)  # warm both (lingua loads a language's model on first use)
    rounds = []
    for _ in range(args.rounds):
        t_anchor, anchor_langs, _ = timed(texts, anchor)
        t_ours, our_langs, models = timed(texts, default)
        rounds.append((round(t_ours, 3), round(t_anchor, 3)))
    t_ours, t_anchor = min(r[0] for r in rounds), min(r[1] for r in rounds)
    routed = lingua_share(models)
    agree = sum(a == b for a, b in zip(our_langs, anchor_langs, strict=True)) / len(texts)
    print(json.dumps({"docs": len(texts), "backend": default.backend, "rounds_s": rounds}))
    ratio = (len(texts) / t_ours) / (len(texts) / t_anchor)
    print(
        json.dumps(
            {
                "benchmark": "langid_web",
                "ours": round(len(texts) / t_ours, 1),
                "anchor": round(len(texts) / t_anchor, 1),
                "unit": "docs/s",
                "ratio": round(ratio, 3),
                "routed_to_lingua": round(routed, 4),
                "label_agreement_with_lid176": round(agree, 4),
                "target": TARGET,
                "pass": ratio >= TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
