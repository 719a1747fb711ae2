"""Redaction leaks that whole-sentence tests miss: the tail of a partly overlapping detection, and a
name that NER tagged in one place but not in another of the same document."""

from __future__ import annotations

from presidio_analyzer import RecognizerResult

from pii.redact import merge_overlaps, propagate


def test_partially_overlapping_detections_leak_no_tail():
    """Spans 8-16 and 12-24 overlap: the merged span must run to 24, or characters 16-24 stay readable."""
    merged = merge_overlaps(
        [RecognizerResult("PHONE_NUMBER", 8, 16, 0.75), RecognizerResult("CREDIT_CARD", 12, 24, 0.5)]
    )
    assert [(m.entity_type, m.start, m.end) for m in merged] == [("PHONE_NUMBER", 8, 24)]
    merged = merge_overlaps(
        [RecognizerResult("US_SSN", 0, 11, 0.5), RecognizerResult("PERSON", 30, 35, 0.85)]
    )
    assert [(m.start, m.end) for m in merged] == [(0, 11), (30, 35)]  # disjoint spans stay apart


def test_name_found_once_leaks_at_no_other_occurrence():
    text = "Tamara called. Later Tamara wrote to Tamaras and to Tamara."
    first = text.index("Tamara")
    results = propagate(text, [RecognizerResult("PERSON", first, first + 6, 0.85)], frozenset({"PERSON"}))
    spans = sorted((r.start, r.end) for r in results)
    expected = [(i, i + 6) for i in range(len(text)) if text.startswith("Tamara", i) and text[i + 6] != "s"]
    assert spans == expected and len(expected) == 3  # whole words only: "Tamaras" is another word
    assert {r.entity_type for r in results} == {"PERSON"}
