"""The NER's second opinion on PERSON (pii.batched_ner.SecondOpinion, pii.rules.unsure_people) and the
truecasing of all-lower-case text (pii.truecase): what each adds, what each refuses, and that neither
changes the NER's own entities."""

from __future__ import annotations

import numpy as np
import pytest

from pii.batched_ner import BEGIN, OUT, UNIT, UNSURE, SecondOpinion
from pii.engine import build_analyzer
from pii.nlp import load_spacy
from pii.settings import DEFAULT_SPACY_MODEL, PiiSettings
from pii.truecase import Truecaser, load_truecaser

# Sentences written for these tests (not from the evaluation data). The NER alone misses each name.
MISSED_ALONE = {
    "The meeting with Bogdan ended late.": "Bogdan",
    "We met Sven at the station.": "Sven",
}
# Capitalised words after a place word are places or firms, not people, even when the NER nearly said so.
PLACES = ["I had lunch at Nandos.", "The train arrived at Needham on time.", "Revenue at Spacecurve grew."]
LOWER = "have you been to a david lange concert before?"


@pytest.fixture(scope="module")
def analyzers():
    return build_analyzer(PiiSettings()), build_analyzer(
        PiiSettings(person={"second_opinion": None, "lowercase": False})
    )


def _people(analyzer, texts: list[str]) -> list[list[str]]:
    return [
        [t[r.start : r.end] for r in found if r.entity_type == "PERSON"]
        for t, found in zip(texts, analyzer.analyze_batch(texts), strict=True)
    ]


def test_second_opinion_finds_names_the_ner_nearly_tagged(analyzers):
    ours, without = analyzers
    texts = list(MISSED_ALONE)
    assert _people(without, texts) == [[], []]
    assert _people(ours, texts) == [[name] for name in MISSED_ALONE.values()]


def test_second_opinion_refuses_words_after_a_place_word(analyzers):
    ours, _ = analyzers
    assert _people(ours, PLACES) == [[], [], []]


def test_a_lone_document_gets_the_same_second_opinion_as_a_batch(analyzers):
    ours, _ = analyzers
    text = next(iter(MISSED_ALONE))
    assert [(r.start, r.end) for r in ours.analyze(text)] == [
        (r.start, r.end) for r in ours.analyze_batch([text, "Nothing here."])[0]
    ]


def test_second_opinion_leaves_the_entities_unchanged():
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True, "blis")
    texts = [*MISSED_ALONE, *PLACES, "Barack Obama met Angela Merkel in Berlin."]
    reference = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    analyzer = build_analyzer(PiiSettings(ner_decoder="batched", ner_blas="blis"))
    docs = analyzer.decoder([nlp.make_doc(t) for t in texts])
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in docs] == reference
    assert any(len(d.spans[UNSURE]) for d in docs)


def test_near_misses_on_made_up_scores():
    """O beat U-PERSON by less than the margin: a near miss; by more: none; U-ORG beat U-PERSON narrowly:
    a near miss; a PERSON action taken is no near miss; an invalid PERSON action never is."""
    opinion = SecondOpinion(label=7, unit=1, begin=2, margin=1.0)
    # classes: 0 = O, 1 = U-PERSON, 2 = B-PERSON, 3 = U-ORG
    scores = np.array(
        [[5.0, 4.5, 0, 0], [5.0, 3.0, 0, 0], [0, 2.5, 0, 3.0], [0, 6.0, 0, 0], [5.0, 4.9, 0, 0]]
    )
    valid = np.ones_like(scores, dtype=bool)
    valid[4, 1] = False
    guess = np.array([0, 0, 3, 1, 0])
    move = np.array([OUT, OUT, UNIT, UNIT, OUT])
    label = np.array([0, 0, 9, 7, 0], dtype=np.uint64)
    assert opinion.near_misses(scores, valid, guess, move, label).tolist() == [
        True,
        False,
        True,
        False,
        False,
    ]
    begin = opinion.near_misses(
        np.array([[0, 0, 2.8, 3.0]]), np.ones((1, 4), bool), np.array([3]), np.array([BEGIN]), np.array([9])
    )
    assert begin.tolist() == [True]


def test_truecasing_keeps_offsets_and_spares_common_words():
    truecaser = load_truecaser(DEFAULT_SPACY_MODEL)
    cased = truecaser.text(LOWER)
    assert len(cased) == len(LOWER) and cased.lower() == LOWER
    assert "David Lange" in cased and "have you been to a" in cased
    assert truecaser.text("i don't know") == "i don't know"  # no capital after an apostrophe
    assert not Truecaser() and truecaser  # without word lists the engine does not truecase at all


def test_lower_case_text_gets_its_names(analyzers):
    ours, without = analyzers
    assert _people(without, [LOWER]) == [[]]
    assert _people(ours, [LOWER]) == [["david lange"]]
