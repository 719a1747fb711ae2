"""Overlap questions about many spans of one document, each answered in O(log n).

Why: the rules and the redaction ask, for every finding, whether some other span
overlaps or covers it. Asked by comparing every span with every other, one PII-dense
page (a 5 MB line of addresses and phone numbers, 150,000 findings) takes hours, and
stalls the Spark task that holds it. These indexes answer the same questions, with the
same answers for every input (empty spans included), after one sort.

Spans are half-open [start, end); two spans "overlap" when `a.start < b.end and
b.start < a.end`, the test the rules wrote out pairwise (so an empty span strictly
inside another overlaps it, and one on its edge does not).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from presidio_analyzer import RecognizerResult


class SpanIndex:
    """A fixed set of spans: does any overlap [start, end), or cover it?

    Sorted by start with a running maximum of ends, the spans that start before a
    point are a prefix, and the largest end among them decides both questions.
    """

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self._starts = [s for s, _ in ordered]
        self._max_ends = list(accumulate((e for _, e in ordered), max))

    def __len__(self) -> int:
        return len(self._starts)

    def _max_end_before(self, count: int) -> int | None:
        return self._max_ends[count - 1] if count else None

    def overlaps(self, start: int, end: int) -> bool:
        """Some span s with s.start < end and start < s.end."""
        reach = self._max_end_before(bisect.bisect_left(self._starts, end))
        return reach is not None and reach > start

    def covers(self, start: int, end: int) -> bool:
        """Some span s with s.start <= start and end <= s.end."""
        reach = self._max_end_before(bisect.bisect_right(self._starts, start))
        return reach is not None and reach >= end


class Claims:
    """Non-empty, pairwise disjoint spans claimed one at a time, among known possible bounds.

    Why not a sorted list: inserting into one moves every later item, quadratic again
    on a dense page. The bounds of every span that may be asked about or claimed are
    known up front, so the line is cut at them into elementary pieces; a claimed span
    marks its pieces in a Fenwick tree (each piece at most once, since claims are
    disjoint) and a question is a range sum.
    """

    def __init__(self, bounds: Iterable[int]) -> None:
        self._points = sorted(set(bounds))
        self._tree = [0] * (len(self._points) + 1)

    def _piece(self, offset: int) -> int:
        return bisect.bisect_left(self._points, offset)

    def _count_before(self, piece: int) -> int:
        total = 0
        while piece > 0:
            total += self._tree[piece]
            piece -= piece & -piece
        return total

    def overlaps(self, start: int, end: int) -> bool:
        """Some claimed span overlaps the non-empty [start, end) (both among the bounds)."""
        lo, hi = self._piece(start), self._piece(end)
        return self._count_before(hi) > self._count_before(lo)

    def claim(self, start: int, end: int) -> None:
        """Mark [start, end) (both among the bounds) as taken; it must overlap no earlier claim."""
        size = len(self._tree)
        for piece in range(self._piece(start), self._piece(end)):
            at = piece + 1
            while at < size:
                self._tree[at] += 1
                at += at & -at


def yield_to(
    results: list[RecognizerResult], entity: str, wins: Callable[[RecognizerResult], bool], inside: bool
) -> list[RecognizerResult]:
    """`entity` results dropped where a result for which `wins(other)` holds covers them (`inside`) or
    overlaps them.

    One index of the winners, not a comparison with each: a dense page has
    tens of thousands of phones and addresses, and pairwise this was quadratic.
    """
    strong = SpanIndex((o.start, o.end) for o in results if o.entity_type != entity and wins(o))
    if not strong:
        return list(results)  # a new list, as always
    loses = strong.covers if inside else strong.overlaps
    return [r for r in results if r.entity_type != entity or not loses(r.start, r.end)]


def keep_longest(results: list[RecognizerResult], entity: str) -> list[RecognizerResult]:
    """Of overlapping `entity` results (NER and cue, phonenumbers and written format), the longest.

    Longest first (then by start, then in the given order), each kept unless it overlaps one
    kept before. Kept non-empty spans are disjoint, so they are claims. Empty
    (or inverted) spans sort after them and can block nothing, so they are checked against
    the final non-empty ones.
    """
    mine = sorted(
        (r for r in results if r.entity_type == entity), key=lambda r: (-(r.end - r.start), r.start)
    )
    claims = Claims(x for r in mine if r.end > r.start for x in (r.start, r.end))
    kept: list[RecognizerResult] = []
    for r in mine:
        if r.end <= r.start:
            break
        if not claims.overlaps(r.start, r.end):
            claims.claim(r.start, r.end)
            kept.append(r)
    final = SpanIndex((k.start, k.end) for k in kept)
    rest = [r for r in mine if r.end <= r.start and not final.overlaps(r.start, r.end)]
    return [r for r in results if r.entity_type != entity] + kept + rest
