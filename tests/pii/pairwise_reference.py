"""The pairwise algorithms the indexed ones replaced, kept verbatim as the reference they must equal.

Each compared every finding with every other (or with every span taken so far), which is
quadratic on a dense page; tests/pii/test_overlaps.py checks that the indexed versions in
pii/overlaps.py, pii/rules.py, pii/redact.py, pii/engine.py and pii/kernel.py give the same
output on random and real spans. Do not "fix" these: they define the expected answers.
"""

from __future__ import annotations

import re

from presidio_analyzer import RecognizerResult

from pii.redact import RECOGNIZER_KEY, Redaction, Span

WORD = re.compile(r"[^\W\d_]{2,}")


def old_yield(results: list[RecognizerResult], entity: str, wins, inside: bool) -> list[RecognizerResult]:
    strong = [o for o in results if o.entity_type != entity and wins(o)]

    def loses(r: RecognizerResult) -> bool:
        if inside:
            return any(o.start <= r.start and r.end <= o.end for o in strong)
        return any(o.start < r.end and r.start < o.end for o in strong)

    return [r for r in results if r.entity_type != entity or not loses(r)]


def old_longest(results: list[RecognizerResult], entity: str) -> list[RecognizerResult]:
    mine = sorted(
        (r for r in results if r.entity_type == entity), key=lambda r: (-(r.end - r.start), r.start)
    )
    kept: list[RecognizerResult] = []
    for r in mine:
        if not any(k.start < r.end and r.start < k.end for k in kept):
            kept.append(r)
    return [r for r in results if r.entity_type != entity] + kept


def old_line_has_word(text: str, start: int, end: int) -> bool:
    """rules.unsure_people's test that the span's line holds another word."""
    line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    rest = text[line_start:start] + text[end : line_end if line_end >= 0 else len(text)]
    return bool(WORD.search(rest))


def old_propagate(
    text: str, results: list[RecognizerResult], entity_types: frozenset[str]
) -> list[RecognizerResult]:
    values = {
        text[r.start : r.end]: r for r in results if r.entity_type in entity_types and r.end - r.start > 2
    }
    if not values:
        return results
    taken = [(r.start, r.end) for r in results]
    extra = []
    for value, source in values.items():
        for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text):
            if not any(lo < m.end() and m.start() < hi for lo, hi in taken):
                taken.append(m.span())
                extra.append(
                    RecognizerResult(
                        source.entity_type,
                        m.start(),
                        m.end(),
                        source.score,
                        recognition_metadata={RECOGNIZER_KEY: "propagated"},
                    )
                )
    return [*results, *extra]


def old_outside(results: list[RecognizerResult], text: str, replacements: re.Pattern[str]) -> list:
    taken = [m.span() for m in replacements.finditer(text)] if results else []
    if not taken:
        return results
    kept = []
    for r in results:
        start, end = r.start, r.end
        for lo, hi in taken:
            if lo <= start < hi:
                start = hi
            if lo < end <= hi:
                end = lo
        if end - start > 0 and text[start:end].strip():
            r.start, r.end = start, end
            kept.append(r)
    return kept


def old_then(first: Redaction, later: Redaction) -> Redaction:
    moved = []
    for span in first.spans:
        if any(lo < span.end and span.start < hi for lo, hi, _, _ in later.edits):
            continue
        shift = sum((ne - ns) - (hi - lo) for lo, hi, ns, ne in later.edits if hi <= span.start)
        moved.append(
            Span(span.entity_type, span.start + shift, span.end + shift, span.score, span.recognizer)
        )
    spans = sorted([*moved, *later.spans], key=lambda s: s.start)
    return Redaction(later.text, spans, later.edits)
