"""HTML main-text extraction: trafilatura vs resiliparse on trafilatura's own evaluation set.

Corpus: ../shared/data/web/trafilatura_eval (1,033 real pages in a tar.xz; evaldata.json
annotates 990 of them with snippets that must be kept, `with`, and boilerplate that
must go, `without`). Scoring follows trafilatura's evaluation: a `with` snippet found in
the output (whitespace-normalized substring) is a true positive, missed a false
negative; a `without` snippet found is a false positive. Both extractors get the same
Unicode input, decoded by our `pipelines.ingest.html_text.decode_bytes`.

Run: `python -m benchmarks.html_extract [--quick]`. The last line is the benchmark JSON
(ours = the chosen extractor's F1, anchor = the other's F1, ratio = ours/anchor).
"""

from __future__ import annotations

import argparse
import json
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.ingest.html_text import decode_bytes, extract_text

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "web" / "trafilatura_eval"
EXTRACTORS = ("resiliparse", "trafilatura")
QUICK_PAGES = 200


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    seconds: float = 0.0
    pages: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 0.0

    def add(self, item: dict, text: str, seconds: float) -> None:
        """Count one page: the annotated snippets that must be in the text and those that must not."""
        text = _norm(text)
        self.seconds += seconds
        self.pages += 1
        found = sum(1 for w in item["with"] if _norm(w) in text)
        self.tp += found
        self.fn += len(item["with"]) - found
        self.fp += sum(1 for w in item["without"] if _norm(w) in text)

    def summary(self) -> dict[str, float]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "pages_per_s": round(self.pages / self.seconds, 1) if self.seconds else 0.0,
        }


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def load_pages(folder: Path, limit: int | None) -> list[tuple[dict, str]]:
    """(annotation, decoded page) pairs, in a stable order, decoded once for both extractors."""
    annotations = json.loads((DATA / "evaldata.json").read_text(encoding="utf-8"))
    root = folder / "trafilatura_tests"
    pages = []
    for url in sorted(annotations)[:limit]:
        item = annotations[url]
        path = next((p for sub in ("cache", "eval") if (p := root / sub / item["file"]).is_file()), None)
        if path is not None:
            pages.append((item, decode_bytes(path.read_bytes(), html=True).text))
    return pages


def score(extractor: str, pages: list[tuple[dict, str]]) -> Score:
    result = Score()
    for item, html in pages:
        start = time.perf_counter()
        text = extract_text(html, extractor)  # type: ignore[arg-type]
        result.add(item, text, time.perf_counter() - start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"score the first {QUICK_PAGES} annotated pages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="html-extract-") as tmp:
        with tarfile.open(DATA / "trafilatura_tests.tar.xz") as tar:
            tar.extractall(tmp, filter="data")
        pages = load_pages(Path(tmp), QUICK_PAGES if args.quick else None)
    scores = {name: score(name, pages) for name in EXTRACTORS}
    for name, s in scores.items():
        print(f"{name:12s} pages={s.pages} " + " ".join(f"{k}={v}" for k, v in s.summary().items()))
    # Pick by F1 unless the other is within one point of F1 and at least twice as fast.
    best, other = sorted(EXTRACTORS, key=lambda n: scores[n].f1, reverse=True)
    b, o = scores[best], scores[other]
    if b.f1 - o.f1 < 0.01 and o.summary()["pages_per_s"] >= 2 * b.summary()["pages_per_s"]:
        best, other = other, best
    print(f"choice: {best}")
    ratio = scores[best].f1 / scores[other].f1 if scores[other].f1 else 0.0
    print(
        json.dumps(
            {
                "benchmark": "html_extract",
                "ours": round(scores[best].f1, 4),
                "anchor": round(scores[other].f1, 4),
                "unit": "F1 on trafilatura evaldata (ours = chosen extractor)",
                "ratio": round(ratio, 3),
                "target": 1.0,
                "pass": ratio >= 1.0,
                "details": {
                    "choice": best,
                    **{n: s.summary() for n, s in scores.items()},
                    "pages": len(pages),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
