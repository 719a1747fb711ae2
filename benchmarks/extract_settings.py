"""trafilatura's settings on its own evaluation set: which ones cost F1, which ones save time.

Why: trafilatura is ~90% of ingest's time on both sides of benchmarks.ingest and
benchmarks.s3_ingest (BENCHMARKS.md), so its settings decide the throughput; our call
(pipelines.ingest.html_text.extract_text) runs it with its defaults (fallback extractors on).

Corpus and scoring: benchmarks.html_extract's (990 annotated pages, snippet TP/FP/FN). The pages,
in that module's stable order, are split in two halves by position: even positions tune (pick the
fastest setting whose F1 there is within `--tolerance` of the default's), odd positions report,
so the choice is not scored on the pages that made it. Each page is extracted by every setting in
turn (the order rotating per page), so a load change on the shared machine hits all settings alike.

Run: `python -m benchmarks.extract_settings [--quick]`; the last line is the JSON (ours = the chosen
setting's report-half pages/s, anchor = the default's, ratio = speed-up; F1 of both in details).
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.html_extract import DATA, QUICK_PAGES, Score, load_pages
from pipelines.ingest.html_text import extract_text

# trafilatura.extract keyword arguments on top of extract_text's own (include_comments=False,
# deduplicate=False); "default" is exactly extract_text's call.
SETTINGS: dict[str, dict[str, bool]] = {
    "default": {},
    "fast": {"fast": True},
    "favor_precision": {"favor_precision": True},
    "fast+favor_precision": {"fast": True, "favor_precision": True},
}


def extract(html: str, setting: str) -> str:
    """The page's text under one setting (the default goes through our own extract_text)."""
    if setting == "default":
        return extract_text(html, "trafilatura")
    import trafilatura

    options = SETTINGS[setting]
    return (trafilatura.extract(html, include_comments=False, deduplicate=False, **options) or "").strip()


def score_all(pages: list[tuple[dict, str]]) -> dict[str, list[Score]]:
    """Per setting, [tune-half score, report-half score]; settings interleaved page by page."""
    names = list(SETTINGS)
    scores = {name: [Score(), Score()] for name in names}
    for name in names:  # imports and first-call caches, untimed
        extract(pages[0][1], name)
    for index, (item, html) in enumerate(pages):
        for turn in range(len(names)):
            name = names[(index + turn) % len(names)]
            start = time.perf_counter()
            text = extract(html, name)
            scores[name][index % 2].add(item, text, time.perf_counter() - start)
    return scores


def choose(scores: dict[str, list[Score]], tolerance: float) -> str:
    """The fastest setting on the tuning half whose F1 there is within `tolerance` of the default's."""
    floor = scores["default"][0].f1 - tolerance
    eligible = [name for name, (tune, _) in scores.items() if tune.f1 >= floor]
    return min(eligible, key=lambda name: scores[name][0].seconds / max(scores[name][0].pages, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_PAGES} annotated pages")
    parser.add_argument("--tolerance", type=float, default=0.005, help="F1 a faster setting may lose")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="extract-settings-") as tmp:
        with tarfile.open(DATA / "trafilatura_tests.tar.xz") as tar:
            tar.extractall(tmp, filter="data")
        pages = load_pages(Path(tmp), QUICK_PAGES if args.quick else None)
    scores = score_all(pages)
    table: dict[str, Any] = {}
    for name, (tune, report) in scores.items():
        table[name] = {"tune": tune.summary(), "report": report.summary()}
        print(f"{name:22s} tune {tune.summary()}  report {report.summary()}")
    best = choose(scores, args.tolerance)
    chosen, default = scores[best][1].summary(), scores["default"][1].summary()
    print(f"choice on the tuning half: {best}")
    print(
        json.dumps(
            {
                "benchmark": "extract_settings",
                "ours": chosen["pages_per_s"],
                "anchor": default["pages_per_s"],
                "unit": "pages/s of the chosen trafilatura setting vs the default (report half, 1 process)",
                "ratio": round(chosen["pages_per_s"] / default["pages_per_s"], 3)
                if default["pages_per_s"]
                else 0.0,
                "details": {
                    "choice": best,
                    "f1_report": {"chosen": chosen["f1"], "default": default["f1"]},
                    "tolerance": args.tolerance,
                    "pages": len(pages),
                    "settings": table,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
