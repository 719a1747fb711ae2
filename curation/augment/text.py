"""Text noise operations for robustness augmentation: pure functions of (text, rng, params).

Each returns the new text and the parameters actually drawn, so that a variant
row records exactly what was done to its parent and can be reproduced.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
WORD = re.compile(r"\S+\s*")

TextOp = Callable[[str, random.Random, dict[str, Any]], tuple[str, dict[str, Any]]]


def span_deletion(text: str, rng: random.Random, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Delete one contiguous span of words, at most `max_fraction` of them (at least one word)."""
    words = WORD.findall(text)
    if len(words) < 2:
        return text, {"start_word": 0, "words": 0}
    length = rng.randint(1, max(1, int(len(words) * params["max_fraction"])))
    start = rng.randrange(0, len(words) - length + 1)
    return "".join(words[:start] + words[start + length :]), {"start_word": start, "words": length}


def sentence_order(text: str, rng: random.Random, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Shuffle sentences within each paragraph; paragraph order and boundaries stay as they were."""
    changed = 0
    paragraphs = []
    for paragraph in text.split("\n"):
        sentences = SENTENCE_END.split(paragraph)
        if len(sentences) > 1:
            order = list(range(len(sentences)))
            rng.shuffle(order)
            changed += order != sorted(order)
            paragraph = " ".join(sentences[i] for i in order)
        paragraphs.append(paragraph)
    return "\n".join(paragraphs), {"paragraphs_shuffled": changed}


def char_noise(text: str, rng: random.Random, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Typos: each character is, with probability `char_rate`, deleted, doubled, swapped or replaced."""
    rate = params["char_rate"]
    alphabet = sorted({c for c in text if c.isalpha()}) or ["e"]
    out: list[str] = []
    edits = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace() or rng.random() >= rate:
            out.append(char)
            i += 1
            continue
        edits += 1
        kind = rng.randrange(4)
        if kind == 1:
            out.append(char * 2)
        elif kind == 2 and i + 1 < len(text):
            out.append(text[i + 1] + char)
            i += 1
        elif kind == 3:
            out.append(rng.choice(alphabet))
        i += 1
    return "".join(out), {"char_rate": rate, "edits": edits}


CASE_MODES = ("upper", "lower", "title", "random_words")


def case_change(text: str, rng: random.Random, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Upper, lower or title case the text, or upper-case a random `word_rate` share of its words."""
    mode = rng.choice(params.get("modes") or CASE_MODES)
    if mode == "upper":
        return text.upper(), {"mode": mode}
    if mode == "lower":
        return text.lower(), {"mode": mode}
    if mode == "title":
        return text.title(), {"mode": mode}
    words = WORD.findall(text)
    flipped = [w.upper() if rng.random() < params["word_rate"] else w for w in words]
    return "".join(flipped), {"mode": mode, "word_rate": params["word_rate"]}


TEXT_OPS: dict[str, TextOp] = {
    "span_deletion": span_deletion,
    "sentence_order": sentence_order,
    "char_noise": char_noise,
    "case": case_change,
}
