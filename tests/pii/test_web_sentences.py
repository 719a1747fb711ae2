"""Real web text labelled by hand (tests/data/pii_web_sentences.md has the guide): ours is not worse
than Presidio's default on precision or recall, for any of the four types or overall, exact or overlap.

Measured on 2026-12-03 after the second opinion and truecasing (313 sentences; exact spans, precision /
recall), ours vs Presidio's default: overall 0.691 / 0.775 vs 0.668 / 0.732; PERSON 0.644 / 0.777 vs
0.600 / 0.696; PHONE_NUMBER 0.900 / 0.818 vs 0.889 / 0.727; EMAIL_ADDRESS 1.0 / 1.0 both; LOCATION
0.677 / 0.722 both (no rule of ours touches it). Overlapping spans, overall: 0.730 / 0.818 vs 0.723 / 0.792.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pii.evaluate import default_predictor, evaluate, ours_predictor
from pii.settings import PiiSettings
from tests.pii.web_sentences import ENTITIES, load_web_sentences


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[dict]:
    return load_web_sentences(shared_data)


def test_labelled_set_is_complete(records):
    assert len(records) >= 300
    labelled = {s["entity_type"] for r in records for s in r["spans"]}
    assert labelled == set(ENTITIES)
    for r in records:
        for s in r["spans"]:
            assert r["full_text"][s["start_position"] : s["end_position"]].strip()


@pytest.mark.parametrize("match", ["exact", "overlap"])
def test_not_worse_than_presidio_default(records, match):
    settings = PiiSettings(entities=ENTITIES)
    ours = evaluate(records, settings, ours_predictor(settings), match)
    base = evaluate(records, settings, default_predictor(settings), match)
    for key in ("precision", "recall"):
        assert ours["overall"][key] >= base["overall"][key], key
        for entity in ENTITIES:
            assert ours["per_type"][entity][key] >= base["per_type"][entity][key], (entity, key)
