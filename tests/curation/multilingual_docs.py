"""Multilingual documents from real text: lingua's sentences joined per language, in varied shapes.

Shapes vary on purpose (sentences run together, one per line, a few repeated, short list-like
lines) so that every Gopher, C4 and FineWeb rule both passes and fails on some documents.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import missing_shared_data

SENTENCES = Path("langid") / "lingua" / "language-testdata" / "sentences"


def lingua_sentences(shared_data: Path, lang: str) -> list[str]:
    path = shared_data / SENTENCES / f"{lang}.txt"
    if not path.is_file():
        missing_shared_data(f"lingua sentences {path} are absent")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _shape(picked: list[str], kind: int) -> str:
    if kind == 0:  # prose: paragraphs of sentences
        return "\n\n".join(" ".join(picked[i : i + 4]) for i in range(0, len(picked), 4))
    if kind == 1:  # one sentence per line
        return "\n".join(picked)
    if kind == 2:  # boilerplate: some lines repeated
        return "\n".join(picked + picked[: len(picked) // 2])
    # list-like: short fragments without terminal punctuation
    return "\n".join(s.split(" ")[0][:20] if " " in s else s[:8] for s in picked)


def lingua_documents(shared_data: Path, lang: str, count: int, seed: int = 0) -> list[str]:
    """`count` documents of 3 to 40 of the language's sentences, in the four shapes in turn."""
    sentences = lingua_sentences(shared_data, lang)
    rng = random.Random(f"{lang}-{seed}")
    docs = []
    for i in range(count):
        picked = rng.sample(sentences, rng.randint(3, min(40, len(sentences))))
        docs.append(_shape(picked, i % 4))
    return docs
