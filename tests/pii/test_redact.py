"""Redaction policies and the no-leak property: re-analysing any redacted output finds nothing."""

from __future__ import annotations

import pytest

from pii.kernel import redact_texts
from pii.redact import merge_overlaps, pseudonym
from pii.settings import PiiSettings

KEY = b"test-key"


@pytest.mark.parametrize("policy", ["placeholder", "pseudonym", "mask"])
def test_no_entity_survives_reanalysis(policy, generated_small, analyzer):
    texts = [r["full_text"] for r in generated_small]
    settings = PiiSettings(policy=policy)
    redacted = redact_texts(texts, settings, key=KEY)
    found_before = analyzer.analyze_batch(texts)
    assert sum(len(r["spans"]) for r in redacted) > 50
    again = analyzer.analyze_batch([r["text"] for r in redacted])
    assert [a for a in again if a] == []
    for text, before, out in zip(texts, found_before, redacted, strict=True):
        for res in before:
            value = text[res.start : res.end]
            if len(value) > 3:
                assert value not in out["text"], (policy, res.entity_type)
        for span in out["spans"]:
            assert set(span) == {"entity_type", "start", "end", "score", "recognizer"}


def test_spans_point_at_replacements(generated_small):
    out = redact_texts([r["full_text"] for r in generated_small], PiiSettings())
    spans = [(o["text"], s) for o in out for s in o["spans"]]
    assert spans
    for text, span in spans:
        assert text[span["start"] : span["end"]] == f"<{span['entity_type']}>"
    for o in out:
        assert sum(o["counts"].values()) == len(o["spans"])


def test_pseudonyms_consistent_within_document_and_keyed():
    text = "Mail ann@corp.com today; again: ann@corp.com, or bob@corp.com."
    [out] = redact_texts([text], PiiSettings(policy="pseudonym", ner=False), key=KEY)
    names = [out["text"][s["start"] : s["end"]] for s in out["spans"]]
    assert names[0] == names[1] != names[2]
    assert all(n.startswith("<EMAIL_ADDRESS_") for n in names)
    assert pseudonym(KEY, "doc1", "EMAIL_ADDRESS", "ann@corp.com") != pseudonym(
        b"other", "doc1", "EMAIL_ADDRESS", "ann@corp.com"
    )
    assert pseudonym(KEY, "doc1", "EMAIL_ADDRESS", "a") != pseudonym(KEY, "doc2", "EMAIL_ADDRESS", "a")


def test_pseudonym_without_key_is_refused():
    from pii.redact import Redactor

    with pytest.raises(ValueError, match="needs a key"):
        Redactor("pseudonym", None)


def test_overlaps_merge_to_their_union():
    from presidio_analyzer import RecognizerResult

    merged = merge_overlaps(
        [RecognizerResult("US_SSN", 10, 21, 0.5), RecognizerResult("PHONE_NUMBER", 8, 21, 0.75)]
    )
    assert [(m.entity_type, m.start, m.end) for m in merged] == [("PHONE_NUMBER", 8, 21)]


def test_custom_recognizer_from_spec():
    settings = PiiSettings(
        ner=False,
        custom=[{"name": "EMPLOYEE_ID", "pattern": r"\bEMP-\d{6}\b", "score": 0.3, "context": ["employee"]}],
    )
    text = (
        "Badge for employee EMP-123456. The warehouse catalogue lists spare parts such as EMP-654321 today."
    )
    out = redact_texts([text], settings)[0]
    # Context lifts the first match over the threshold; the bare one stays below it.
    assert out["text"] == text.replace("EMP-123456", "<EMPLOYEE_ID>")


def test_settings_errors_name_the_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown entities"):
        PiiSettings(entities=["EMAIL", "PERSON"])
    with pytest.raises(ValidationError, match="not a valid regex"):
        PiiSettings(custom=[{"name": "X_ID", "pattern": "("}])


def test_empty_result_next_to_a_span_is_ignored():
    """An empty result touching a span once made the anonymizer drop it and the stage crash."""
    from presidio_analyzer import RecognizerResult

    from pii.redact import Redactor

    text = "alice@example.com wrote"
    red = Redactor("placeholder").redact(
        text, [RecognizerResult("EMAIL_ADDRESS", 0, 17, 1.0), RecognizerResult("PERSON", 17, 17, 0.9)]
    )
    assert red.text == "<EMAIL_ADDRESS> wrote"
    assert [(s.entity_type, s.start, s.end) for s in red.spans] == [("EMAIL_ADDRESS", 0, 15)]


def test_a_document_that_fails_is_withheld_and_the_rest_redacted(monkeypatch):
    """Fault injection: one document whose redaction raises must not stop the batch nor leak."""
    from pii.kernel import redact_texts
    from pii.redact import Redactor
    from pii.settings import PiiSettings

    real = Redactor.redact

    def flaky(self, text, results, scope=""):
        if "BOOM" in text:
            raise RuntimeError("injected failure")
        return real(self, text, results, scope)

    monkeypatch.setattr(Redactor, "redact", flaky)
    settings = PiiSettings(ner=False, entities=[e for e in PiiSettings().entities if e != "PERSON"])
    out = redact_texts(["mail alice@example.com today", "BOOM bob@example.com", "no pii here"], settings)
    assert [r["scope"] for r in out] == ["patterns", "failed", "patterns"]
    assert out[0]["text"] == "mail <EMAIL_ADDRESS> today"
    assert out[1]["text"] is None and out[1]["spans"] is None
    assert out[2]["text"] == "no pii here"
