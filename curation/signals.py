"""Character classes and measures that several heuristic annotators share (Gopher, C4, FineWeb).

Definitions follow datatrove 0.10.1's filters exactly, so that the presets
reproduce its decisions (docs/curation.md lists every signal); each annotator in
`curation.annotators` declares its own columns next to the code measuring them.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

# Characters that make a "symbol word" for Gopher (a word made only of these is not counted as a word):
# ASCII and CJK/typographic punctuation, the fullwidth digit one, C0/C1 control characters (not tab or
# newline) and every sentence terminal. This is datatrove's PUNCTUATION_SET, needed to match its counts.
SYMBOLS = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "—–”“„’´«»…►━∶"
    "、。「」【】《》〈〉（）？！：；，．％～１"
    + "".join(chr(c) for lo, hi in ((0, 9), (11, 32), (127, 160)) for c in range(lo, hi))
)
# Sentence terminals (Unicode Sentence_Terminal, plus three Khmer signs datatrove also lists): used for
# FineWeb's "line ends with terminal punctuation" rule and as symbol characters.
_STERM = regex.compile(r"\p{Sentence_Terminal}")
TERMINAL_PUNCTUATION = frozenset(
    {chr(c) for c in range(0x110000) if _STERM.match(chr(c))} | {"\u17d6", "\u17d9", "\u17da"}
)
SYMBOL_SET = frozenset(SYMBOLS) | TERMINAL_PUNCTUATION


def ratio(num: float, den: float) -> float | None:
    """num / den, or None where the denominator is zero: the signal is not measurable, not a failure."""
    return num / den if den else None


def duplicates(items: Iterable[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them): every occurrence after the first counts."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars
