"""Accuracy targets on data the rules were not tuned on: the report half of presidio-research's
generated_large.json and all of generated_small.json, ours beside Presidio's default (same spaCy package).

Measured on 2026-12-03 (exact spans, F1), ours / Presidio's default, after the NER's second opinion and
truecasing of lower-case text (pii.batched_ner.SecondOpinion, pii.truecase):
- generated_large report half (1,047 records): overall 0.831 / 0.681, PERSON 0.767 / 0.582, PHONE_NUMBER 0.940 / 0.697
- generated_small (100 records): overall 0.852 / 0.721, PERSON 0.783 / 0.655, PHONE_NUMBER 1.000 / 0.625
The floors asserted are the issue's targets (overall 0.80, PERSON 0.75, PHONE_NUMBER 0.85).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pii.evaluate import default_predictor, evaluate, load_samples, ours_predictor, split
from pii.settings import PiiSettings

# (file, half, overall F1 floor, PERSON floor, PHONE_NUMBER floor)
TARGETS = [
    ("generated_large.json", "report", 0.80, 0.75, 0.85),
    ("generated_small.json", "all", 0.80, 0.75, 0.85),
]


@pytest.fixture(scope="module")
def settings() -> PiiSettings:
    return PiiSettings()


@pytest.mark.parametrize("name, half, overall, person, phone", TARGETS)
def test_targets_and_never_below_presidio_default(
    shared_data: Path, settings, name, half, overall, person, phone
):
    records = split(load_samples(shared_data / "pii" / "presidio-research" / name), half)
    ours = evaluate(records, settings, ours_predictor(settings))
    base = evaluate(records, settings, default_predictor(settings))
    assert ours["overall"]["f1"] >= overall
    assert ours["per_type"]["PERSON"]["f1"] >= person
    assert ours["per_type"]["PHONE_NUMBER"]["f1"] >= phone
    for entity in settings.all_entities():
        assert ours["per_type"][entity]["f1"] >= base["per_type"][entity]["f1"], entity


def test_presidio_default_profile_scores_like_presidio(shared_data: Path):
    """`profile: presidio_default` is one setting away from Presidio's own judgement: on the report half its
    per-type F1 equals Presidio's default engine's within 0.005 (measured: PERSON 0.583 vs 0.582, the others equal)."""
    records = split(
        load_samples(shared_data / "pii" / "presidio-research" / "generated_large.json"), "report"
    )
    presidio_like = PiiSettings(profile="presidio_default")
    ours = evaluate(records, presidio_like, ours_predictor(presidio_like))
    base = evaluate(records, presidio_like, default_predictor(presidio_like))
    for entity in presidio_like.all_entities():
        assert abs(ours["per_type"][entity]["f1"] - base["per_type"][entity]["f1"]) <= 0.005, entity
