"""spaCy's rule-based sentencizer, counted over token texts without building a spaCy Doc.

Why: C4's "too few sentences" rule counts sentences as datatrove does, with spaCy's
sentencizer over the line's tokens; building a Doc per kept line costs more than the
rest of the C4 signals together. The count needs only each token's text, including
the whitespace tokens spaCy keeps (any whitespace other than one plain space after a
word), so the word splitters hand their tokens here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache

ODD_WHITESPACE = re.compile(r"[^\S ]| {2}")
_WHITESPACE_RUNS = re.compile(r"( +|\s)")


@cache
def punct_chars() -> frozenset[str]:
    """The sentencizer's default sentence-final characters."""
    from spacy.pipeline.sentencizer import Sentencizer

    return frozenset(Sentencizer.default_punct_chars)


def is_punct(token: str) -> bool:
    """spaCy's IS_PUNCT: every character is Unicode punctuation (category P*)."""
    return all(unicodedata.category(ch).startswith("P") for ch in token)


def sentence_count(tokens: Iterable[str]) -> int:
    """Sentences spaCy's sentencizer finds in a stripped line's tokens.

    A sentence starts at the first token and at every token that is neither
    punctuation nor a sentence-final character and follows one of those
    characters; the lines reaching here are stripped, so no sentence is blank.
    """
    finals = punct_chars()
    count, seen_period = 0, False
    for tok in tokens:
        is_final = tok in finals
        if count == 0:
            count = 1
        if seen_period and not is_final and not is_punct(tok):
            count += 1
            seen_period = False
        elif is_final:
            seen_period = True
    return count


def spaced_tokens(chunk: Callable[[str], Iterable[str]], line: str) -> list[str]:
    """A line's tokens with the whitespace tokens spaCy keeps, from a per-chunk tokenizer.

    spaCy keeps any whitespace other than one plain space as a token of its own.
    """
    out: list[str] = []
    for piece in _WHITESPACE_RUNS.split(line):
        if not piece:
            continue
        if piece.isspace():
            if piece != " ":
                out.append(piece[1:] if piece.startswith(" ") else piece)
            continue
        out.extend(chunk(piece))
    return out


def with_gaps(words: Iterable[str], text: str) -> list[str]:
    """Words in text order with the whitespace between them as spaCy keeps it (a Doc built from
    `words`: one plain space after a word is that word's trailing space, other gaps are tokens)."""
    out: list[str] = []
    pos = 0
    for word in words:
        start = text.index(word, pos)
        gap = text[pos:start]
        if gap.startswith(" ") and out:
            gap = gap[1:]
        if gap:
            out.append(gap)
        out.append(word)
        pos = start + len(word)
    return out
