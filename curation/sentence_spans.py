"""A document's own sentence split, read back for one of its lines.

Why: C4 counts the sentences of each kept line with the language's splitter run on the line
alone, as datatrove does. For Korean that is a second kiwi analysis of most of the document
(the first gives its words), about 40% of a Korean document's cost. Kiwi's one analysis of the
whole document already splits it into sentences, and where a line starts and ends on that
split's boundaries the line's count can be read from it, with two exceptions found in real text:
kiwi pairs quotation marks and brackets across the document, so a quote opened in another line
can move a boundary inside this one, and it starts a paragraph after a blank line differently. Lines
whose marks do not balance within themselves, lines after a blank line and lines a sentence
crosses into or out of are therefore analysed alone.

How exact, measured (kiwipiepy 0.21, sbg; not provable from outside kiwi, so
tests/curation/test_sentence_spans.py keeps checking it on lingua's Korean): two guards were found
on lingua documents, a line whose marks do not balance (one line of 3,955 differed, a
backtick-opened quote) and a line after a blank one (5 of 763 differed: a leading quoted title or
mark became a sentence of its own). With both, on two later draws of documents not used to find
them (3,446 lines of the annotate benchmark's shape, 8,164 of the agreement test's four shapes, 1,885 of
word pairs, sentences and blank lines mixed), 7,098 lines were read from the document and every count
equals kiwi's own split of the line.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator

import regex

# Opening/closing punctuation and initial/final quotes (Unicode Ps/Pe, Pi/Pf), and the marks that
# open and close alike.
_OPENING = regex.compile(r"\p{Ps}")
_CLOSING = regex.compile(r"\p{Pe}")
_INITIAL = regex.compile(r"\p{Pi}")
_FINAL = regex.compile(r"\p{Pf}")
SYMMETRIC_MARKS = "\"'`"


def balanced(line: str) -> bool:
    """Whether every quotation mark and bracket in `line` can pair with another in the line."""
    return (
        len(_OPENING.findall(line)) == len(_CLOSING.findall(line))
        and len(_INITIAL.findall(line)) == len(_FINAL.findall(line))
        and all(line.count(mark) % 2 == 0 for mark in SYMMETRIC_MARKS)
    )


def line_offsets(text: str) -> Iterator[int]:
    """Where each line of `text.splitlines()` starts in `text`."""
    at = 0
    for piece in text.splitlines(keepends=True):
        yield at
        at += len(piece)


class SentenceSpans:
    """A document's sentences as (start, end) offsets, in order and not overlapping."""

    def __init__(self, spans: Iterable[tuple[int, int]]):
        pairs = list(spans)
        self.starts = [start for start, _ in pairs]
        self.ends = [end for _, end in pairs]

    def __len__(self) -> int:
        return len(self.starts)

    def within(self, start: int, end: int) -> int | None:
        """How many sentences lie inside [start, end); None where a sentence crosses either end."""
        first = bisect_right(self.ends, start)  # the first sentence ending after `start`
        if first < len(self) and self.starts[first] < start:
            return None
        after = bisect_right(self.ends, end)  # the first sentence ending after `end`
        if after < len(self) and self.starts[after] < end:
            return None
        return after - first

    def line_counts(self, text: str) -> list[int | None]:
        """For each line of `text.splitlines()` (this document), its sentences read from the document's
        split where that can stand for the line's own split (see the module docstring), else None."""
        counts: list[int | None] = []
        after_blank = False
        for raw, at in zip(text.splitlines(), line_offsets(text), strict=True):
            line = raw.strip()
            readable = line and not after_blank and balanced(line)
            start = at + len(raw) - len(raw.lstrip())
            counts.append(self.within(start, start + len(line)) if readable else None)
            after_blank = not line
        return counts
