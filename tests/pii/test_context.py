"""The indexed context enhancer gives Presidio's context words and scores, in linear time.

Oracle: Presidio's own `LemmaContextAwareEnhancer`, on presidio-research's generated_large
records (real templates with context words such as "phone" and "card" near the values).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

from pii.cli import load_settings
from pii.context import IndexedContextEnhancer
from pii.engine import get_analyzer


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    records = json.loads((shared_data / "pii/presidio-research/generated_large.json").read_text())
    singles = [r["full_text"] for r in records[:400]]
    return [*singles, " ".join(singles[:25])]  # and one page dense with findings


@pytest.fixture(scope="module")
def analyzer():
    return get_analyzer(load_settings(None, ner=False))


def test_context_words_are_presidios_at_every_token(analyzer, texts: list[str]):
    ours, presidio = IndexedContextEnhancer(), LemmaContextAwareEnhancer()
    compared = 0
    for text in texts:
        artifacts = analyzer.nlp_engine.process_text(text, "en")
        for token, offset in zip(artifacts.tokens, artifacts.tokens_indices, strict=True):
            for start in {offset, offset + len(token) // 2}:  # a finding may start inside a token
                expected = presidio._extract_surrounding_words(artifacts, token.text, start)
                assert set(ours._extract_surrounding_words(artifacts, token.text, start)) == set(expected)
                compared += 1
    assert compared > 8_000


def test_findings_and_scores_are_presidios(analyzer, texts: list[str]):
    """The whole analysis with either enhancer: the same spans, types and (context-raised) scores."""
    engine = analyzer.engine
    assert isinstance(engine.context_aware_enhancer, IndexedContextEnhancer)

    def analysed() -> list[list[tuple]]:
        return [
            sorted(
                (r.entity_type, r.start, r.end, round(r.score, 9))
                for r in engine.analyze(text, language="en")
            )
            for text in texts
        ]

    ours = analysed()
    engine.context_aware_enhancer = LemmaContextAwareEnhancer()
    try:
        presidio = analysed()
    finally:
        engine.context_aware_enhancer = IndexedContextEnhancer()
    assert ours == presidio
    raised = sum(r[3] not in (0.0, 1.0) for doc in ours for r in doc)
    assert sum(map(len, ours)) > 60 and raised > 0
