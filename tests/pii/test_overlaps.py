"""The indexed overlap resolution gives exactly the pairwise algorithms' output (tests/pii/
pairwise_reference.py) on random spans (empty, inverted, nested, duplicated) and on real findings.

Why: the pairwise versions were quadratic in the number of findings (a 5 MB line of addresses
and phone numbers never finished), and the fix must not move a single span.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from presidio_analyzer import RecognizerResult

from pii import rules
from pii.engine import outside_replacements, replacement_pattern
from pii.overlaps import Claims, SpanIndex, keep_longest, yield_to
from pii.redact import ANONYMIZE_SPANS, Redaction, Redactor, Span, _occurrences, merge_overlaps, propagate
from pii.settings import NER_ENTITIES, PiiSettings
from tests.pii.pairwise_reference import (
    old_line_has_word,
    old_longest,
    old_outside,
    old_propagate,
    old_then,
    old_yield,
)

TYPES = ("PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD", "URL")
CHECKED = rules.CHECKED_TYPES


def _random_results(rng: random.Random, count: int, width: int = 60) -> list[RecognizerResult]:
    out = []
    for _ in range(count):
        start = rng.randrange(width)
        length = rng.choice([0, 0, -1, -3, *range(1, 16)])
        out.append(RecognizerResult(rng.choice(TYPES), start, start + length, rng.random()))
    if out and rng.random() < 0.5:  # exact duplicates and shared starts
        twin = rng.choice(out)
        out.append(RecognizerResult(twin.entity_type, twin.start, twin.end, twin.score))
    return out


def _key(results: list[RecognizerResult]) -> list[tuple]:
    return [(r.entity_type, r.start, r.end, r.score, id(r)) for r in results]


def _same_as_reference(results: list[RecognizerResult]) -> None:
    """Each use the rules make of yield_to and keep_longest, against the pairwise reference."""
    for entity in ("PERSON", "PHONE_NUMBER"):
        assert _key(keep_longest(results, entity)) == _key(old_longest(results, entity))
    uses = [("PERSON", lambda o: o.entity_type != "PERSON", True)]
    uses += [("PHONE_NUMBER", lambda o: o.entity_type in CHECKED, False)]
    for entity, wins, inside in uses:
        assert _key(yield_to(results, entity, wins, inside)) == _key(old_yield(results, entity, wins, inside))


def test_random_spans_resolve_exactly_as_pairwise():
    rng = random.Random(17)
    for _ in range(3000):
        _same_as_reference(_random_results(rng, rng.randrange(0, 40), width=rng.choice([10, 60, 400])))


def test_span_index_and_claims_answer_as_brute_force():
    rng = random.Random(5)
    for _ in range(500):
        spans = [(s, s + rng.randrange(-2, 9)) for s in (rng.randrange(30) for _ in range(rng.randrange(12)))]
        index = SpanIndex(spans)
        for a in range(-1, 32):
            for b in range(a - 2, a + 9):
                assert index.overlaps(a, b) == any(s < b and a < e for s, e in spans)
                assert index.covers(a, b) == any(s <= a and b <= e for s, e in spans)
        candidates = [(a, a + rng.randrange(1, 8)) for a in (rng.randrange(30) for _ in range(20))]
        claims, claimed = Claims(x for span in candidates for x in span), []
        for a, b in candidates:
            hit = any(s < b and a < e for s, e in claimed)
            assert claims.overlaps(a, b) == hit
            if not hit:
                claims.claim(a, b)
                claimed.append((a, b))


def _real_results(shared_data: Path, analyzer) -> list[list[RecognizerResult]]:
    """Real overlapping spans: the pattern findings on presidio-research's generated_large.json beside
    its gold spans and a PHONE_NUMBER copy of each finding, so that every kind of conflict occurs."""
    from pii.evaluate import load_samples

    records = load_samples(shared_data / "pii/presidio-research/generated_large.json")[:600]
    texts = [r["full_text"] for r in records]
    found = analyzer.analyze_batch(texts, [False] * len(texts))
    gold_types = {"PERSON": "PERSON", "PHONE_NUMBER": "PHONE_NUMBER", "EMAIL_ADDRESS": "EMAIL_ADDRESS"}
    out = []
    for record, results in zip(records, found, strict=True):
        gold = [
            RecognizerResult(
                gold_types.get(s["entity_type"], "URL"), s["start_position"], s["end_position"], 0.5
            )
            for s in record["spans"]
        ]
        phones = [RecognizerResult("PHONE_NUMBER", r.start, r.end, 0.4) for r in results]  # conflicts
        out.append([*results, *gold, *phones])
    return out


def test_real_findings_resolve_exactly_as_pairwise(shared_data: Path, analyzer):
    cases = _real_results(shared_data, analyzer)
    assert sum(len(c) for c in cases) > 1000
    for results in cases:
        _same_as_reference(results)


def test_analyzer_output_unchanged_on_real_data(generated_small, analyzer, monkeypatch):
    """The whole analyzer (NER and every rule) on presidio-research's generated_small.json: the same
    findings with the pairwise functions swapped back in."""
    texts = [r["full_text"] for r in generated_small]

    def findings() -> list[list[tuple]]:
        return [
            sorted((r.entity_type, r.start, r.end, r.score) for r in rs)
            for rs in analyzer.analyze_batch(texts)
        ]

    new = findings()
    monkeypatch.setattr(rules, "keep_longest", old_longest)
    monkeypatch.setattr(rules, "yield_to", old_yield)
    assert findings() == new


def test_line_words_as_the_line_slice():
    rng = random.Random(3)
    alphabet = "ab Z1_.\n,é"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        lines = rules.LineWords(text)
        for start in range(len(text) + 1):
            for end in range(start, min(len(text), start + 6) + 1):
                assert lines.other_word(start, end) == old_line_has_word(text, start, end), (text, start, end)


def _propagated(results: list[RecognizerResult]) -> list[tuple]:
    return [(r.entity_type, r.start, r.end, r.score, r.recognition_metadata) for r in results]


def test_propagate_and_occurrences_as_one_regex_per_value():
    rng = random.Random(11)
    words = ["Ann", "Anna", "Ann Lee", "Lee", "(Bob", "Bob", "bob", "x", "Ann-Lee", "_Ann", "Éva"]
    for _ in range(600):
        text = "".join(rng.choice([*words, " ", " ", ", ", "\n", "."]) for _ in range(rng.randrange(1, 30)))
        results = []
        for _ in range(rng.randrange(0, 6)):
            start = rng.randrange(len(text))
            results.append(
                RecognizerResult(
                    rng.choice(["PERSON", "EMAIL_ADDRESS"]), start, start + rng.randrange(0, 9), 0.7
                )
            )
        values = list({text[r.start : r.end] for r in results if r.end - r.start > 2})
        expected = {v: [m.span() for m in re.finditer(rf"(?<!\w){re.escape(v)}(?!\w)", text)] for v in values}
        assert _occurrences(text, values) == expected
        assert _propagated(propagate(text, results, NER_ENTITIES)) == _propagated(
            old_propagate(text, results, NER_ENTITIES)
        )


def test_outside_replacements_as_pairwise():
    rng = random.Random(2)
    pattern = replacement_pattern(PiiSettings())
    pieces = ["<PERSON>", "<EMAIL_ADDRESS>", "**", "***", "a", " ", "b c", "<URL>"]
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 15)))
        spans = [(s, s + rng.randrange(0, 12)) for s in (rng.randrange(len(text)) for _ in range(6))]
        new = outside_replacements([RecognizerResult("PERSON", s, e, 1.0) for s, e in spans], text, pattern)
        old = old_outside([RecognizerResult("PERSON", s, e, 1.0) for s, e in spans], text, pattern)
        assert [(r.start, r.end) for r in new] == [(r.start, r.end) for r in old]


def test_then_as_pairwise():
    rng = random.Random(8)
    for _ in range(500):
        spans = sorted(
            (s, s + rng.randrange(0, 6)) for s in (rng.randrange(80) for _ in range(rng.randrange(8)))
        )
        first = Redaction("t", [Span("PERSON", s, e, 0.5, "r") for s, e in spans])
        edits, at, shift = [], 0, 0
        for _ in range(rng.randrange(6)):
            lo = at + rng.randrange(0, 10)
            hi = lo + rng.randrange(1, 8)
            new_len = rng.randrange(1, 12)
            edits.append((lo, hi, lo + shift, lo + shift + new_len))
            shift += new_len - (hi - lo)
            at = hi
        later = Redaction("u", [Span("EMAIL_ADDRESS", ns, ne, 1.0, "x") for _, _, ns, ne in edits], edits)
        assert first.then(later) == old_then(first, later)


def _whole_text(redactor: Redactor, text: str, results: list[RecognizerResult], scope: str) -> tuple:
    """What Redactor.redact returned before it cut the text into stretches: one anonymize call."""
    from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

    merged = merge_overlaps(results)
    operators = {t: redactor._operator(t, scope) for t in {r.entity_type for r in merged}}
    done = redactor.engine.anonymize(
        text=text,
        analyzer_results=[AnonymizerResult(r.entity_type, r.start, r.end, r.score) for r in merged],
        operators=operators,
        merge_entities_with_spaces=False,
    )
    items = sorted(done.items, key=lambda item: item.start)
    return done.text, [(r.entity_type, i.start, i.end) for r, i in zip(merged, items, strict=True)]


@pytest.mark.parametrize("policy", ["placeholder", "pseudonym", "mask"])
def test_redaction_in_stretches_as_one_anonymize_call(policy):
    rng = random.Random(4)
    redactor = Redactor(policy, key=b"k" * 32)
    text = " ".join(
        rng.choice(["ann", "bob@x.org", "555-0101", "..", "é"]) for _ in range(6 * ANONYMIZE_SPANS)
    )
    results = []
    for m in re.finditer(r"\S+", text):
        if rng.random() < 0.7:
            end = min(len(text), m.end() + rng.choice([0, 0, 2]))  # some overlap the next word
            results.append(RecognizerResult(rng.choice(TYPES), m.start(), end, 0.8))
    red = redactor.redact(text, results, "doc-1")
    assert len(red.spans) > 2 * ANONYMIZE_SPANS
    assert (red.text, [(s.entity_type, s.start, s.end) for s in red.spans]) == _whole_text(
        redactor, text, results, "doc-1"
    )
