"""Language ID: the label table, the ensemble's columns and config, and its accuracy on lingua's report half.

The accuracy bounds are the issue's: the ensemble >= 0.95 on sentences, and on no
language more than 2 points below the better of lid.176 and lingua alone, except
Malay/Indonesian, where the models trade accuracy between the pair and no fusion
measured keeps both within 2 points (docs/curation.md, `benchmarks.langid_msid`):
there the pair model must keep both within `MS_ID_SLACK` and do better on the
pair, taken together, than either model alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from curation.annotate.stage import AnnotateConfig
from curation.langid.calibrate import ALLOWANCE
from curation.langid.ensemble import (
    LINGUA_SCORE_DIGITS,
    Calibration,
    LangIdConfig,
    langid_columns,
    lingua_codes,
)
from curation.langid.evaluate import evaluate_folder, read_folder
from curation.langid.labels import LABELS, from_lid176, script_of
from curation.langid.lid176 import load_model

TRADE_OFF = {"ms", "id"}
MS_ID_SLACK = 0.035  # measured 0.026 (Indonesian) on the report half


def test_label_table_covers_every_backend_output():
    lid176 = {from_lid176(label.removeprefix("__label__")) for label in load_model().get_labels()}
    assert lid176 <= set(LABELS) and set(lingua_codes()) <= set(LABELS)
    assert "no" not in lid176 and "nb" in lid176  # lid.176's Norwegian is Bokmal, one label for it


def test_script_read_from_text_only_for_multi_script_languages():
    assert script_of("sr", "Добар дан, како сте?") == "Cyrl"
    assert script_of("sr", "Dobar dan, kako ste?") == "Latn"
    assert script_of("ja", "anything") == "Jpan" and script_of(None, "x") is None


def test_columns_name_the_deciding_model():
    texts = [
        "The committee will publish its annual report on the state of the economy next week.",
        "Ngiyabonga kakhulu ngosizo lwakho, sizobonana kusasa ekuseni esikoleni.",  # Zulu: lid.176 has none
        None,
        "   ",
    ]
    lang, score, model, script, top = (a.to_pylist() for a in langid_columns(texts))
    assert lang[:2] == ["en", "zu"] and model[:2] == ["fasttext", "lingua"]
    assert lang[2:] == [None, None] and model[2:] == [None, None] and top[2:] == [None, None]
    assert 0 < score[1] <= 1 and script[:2] == ["Latn", "Latn"]
    assert top[0][0]["lang"] == "en" and len(top[0]) == 3


def test_scores_lingua_decides_are_the_same_in_every_process():
    """lingua's confidences vary in their last bits between processes (hash-map order); the scores
    built from them are rounded so that a rerun writes the same table, value for value."""
    texts = ["Ngiyabonga kakhulu ngosizo lwakho, sizobonana kusasa ekuseni esikoleni."] * 2
    for backend in ("ensemble", "lingua"):
        _, score, model, _, _ = langid_columns(texts, LangIdConfig(backend=backend))
        assert model.to_pylist() == ["lingua", "lingua"]
        assert all(s == round(s, LINGUA_SCORE_DIGITS) for s in score.to_pylist())


def test_fasttext_backend_never_asks_lingua():
    lang, _, model, _, _ = langid_columns(
        ["Ngiyabonga kakhulu ngosizo lwakho, sizobonana kusasa."], LangIdConfig(backend="fasttext")
    )
    assert model.to_pylist() == ["fasttext"] and lang[0].as_py() != "zu"


def test_annotate_langid_config():
    assert AnnotateConfig().annotators[0] == {"langid": LangIdConfig()}
    assert AnnotateConfig(annotators=["langid"]).annotators == [{"langid": LangIdConfig()}]
    lingua = AnnotateConfig(annotators=[{"langid": {"backend": "lingua"}}])
    assert lingua.annotators[0]["langid"].backend == "lingua"
    with pytest.raises(ValidationError, match="langid: backend"):
        AnnotateConfig(annotators=[{"langid": {"backend": "cld3"}}])
    with pytest.raises(ValidationError, match="langid: treshold"):
        AnnotateConfig(annotators=[{"langid": {"treshold": 0.5}}])


def test_bundled_calibration_names_its_source_half():
    calibration = Calibration.load()
    assert "calibration half" in calibration.source and 0 < calibration.threshold <= 1
    assert [pair.languages for pair in calibration.pairs] == [("ms", "id")]


def test_halves_split_each_file_by_line_parity(shared_data: Path):
    folder = shared_data / "langid/lingua/language-testdata/sentences"
    (cal, cal_gold), (rep, rep_gold), (every, gold) = (
        read_folder(folder, half) for half in ("calibration", "report", "all")
    )
    assert len(cal) + len(rep) == len(every)
    english = [t for t, g in zip(every, gold, strict=True) if g == "en"]
    assert [t for t, g in zip(cal, cal_gold, strict=True) if g == "en"] == english[0::2]
    assert [t for t, g in zip(rep, rep_gold, strict=True) if g == "en"] == english[1::2]


@pytest.fixture(scope="module")
def sentences_report(shared_data: Path) -> dict:
    return evaluate_folder(shared_data / "langid/lingua/language-testdata/sentences", half="report")


@pytest.mark.slow
def test_ensemble_accuracy_on_report_half(sentences_report: dict):
    backends = sentences_report["backends"]
    assert sentences_report["languages"] == 75
    assert backends["ensemble"]["overall"] >= 0.95
    assert backends["ensemble"]["overall"] > backends["lingua"]["overall"] > backends["fasttext"]["overall"]
    per = {name: {c: v["accuracy"] for c, v in b["per_language"].items()} for name, b in backends.items()}
    short = {
        code: round(max(per["fasttext"][code], per["lingua"][code]) - acc, 3)
        for code, acc in per["ensemble"].items()
        if acc < max(per["fasttext"][code], per["lingua"][code]) - ALLOWANCE
    }
    assert set(short) <= TRADE_OFF, short
    assert all(gap <= MS_ID_SLACK for gap in short.values()), short
    pair = sum(per["ensemble"][c] for c in TRADE_OFF)
    assert pair > max(sum(per["fasttext"][c] for c in TRADE_OFF), sum(per["lingua"][c] for c in TRADE_OFF))
    assert 0 < backends["ensemble"]["routed_to_lingua"] < 0.6
