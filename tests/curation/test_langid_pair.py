"""The Malay/Indonesian pair model: what it reads, what it may change, and input it must survive.

Texts are lingua's real Malay and Indonesian test sentences (report half); the
two short ones below only stand for "a text in one of the pair" where any will do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from curation.langid.ensemble import (
    Calibration,
    LangIdConfig,
    _fasttext,
    detect,
    lingua_codes,
    lingua_probabilities,
    lingua_share,
)
from curation.langid.pair import Inputs, PairModel, cld2_feature, features, fit

MALAY = "Kerajaan negeri akan membina lebih banyak rumah mampu milik kerana permintaan semakin meningkat."
INDONESIAN = "Pemerintah daerah akan membangun lebih banyak rumah murah karena permintaan terus meningkat."


def _inputs(texts: list[str]) -> Inputs:
    labels, scores = _fasttext(texts, None)
    return Inputs(texts, labels, scores, lingua_probabilities(texts), lingua_codes())


def _report_lines(shared_data: Path, code: str, n: int = 40) -> list[str]:
    path = shared_data / "langid/lingua/language-testdata/sentences" / f"{code}.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][1::2][:n]


def test_texts_labelled_ms_or_id_are_decided_by_the_pair_model_and_named_so(shared_data: Path):
    texts = _report_lines(shared_data, "ms") + _report_lines(shared_data, "id")
    texts.append("The committee will publish its annual report on the state of the economy next week.")
    lang, score, model, _ = detect(texts, LangIdConfig())
    pair = Calibration.load().pairs[0]
    assert (
        pair.name == "+".join(pair.detectors) and pair.detectors[0] == "lid176" and {"ms", "id"} <= set(lang)
    )
    for code, decided_by in zip(lang, model, strict=True):
        assert (decided_by == pair.name) == (code in pair.languages)
    assert model[-1] == "fasttext" and all(0 < s <= 1 for s in score)
    in_pair = (lang.count("ms") + lang.count("id")) / len(texts)
    assert lingua_share(model) == (in_pair if "lingua" in pair.detectors else 0.0)


def test_a_pair_model_only_swaps_its_own_two_labels():
    """A model that always answers the pair's first language changes ms/id texts only."""
    always_ms = PairModel(
        languages=("ms", "id"), detectors=["cld2"], coef=[0.0], intercept=1.0, threshold=0.0
    )
    calibration = Calibration.load().model_copy(update={"pairs": [always_ms]})
    texts = [INDONESIAN, "Der Ausschuss veröffentlicht nächste Woche seinen Jahresbericht.", MALAY]
    before = detect(texts, LangIdConfig(backend="ensemble"))[0]
    config = LangIdConfig()
    object.__setattr__(config, "calibrated", lambda: calibration)
    after = detect(texts, config)[0]
    assert before == ["id", "de", "ms"] and after == ["ms", "de", "ms"]


def test_a_pair_model_that_weighs_lingua_asks_it_for_texts_lid176_was_sure_of(tmp_path: Path):
    """lid.176 is sure of plain Indonesian (never routed), so lingua must be run for the pair model."""
    with_lingua = PairModel(
        languages=("ms", "id"), detectors=["lid176", "lingua"], coef=[0.0, 1.0], intercept=0.0, threshold=0.0
    )
    path = tmp_path / "calibration.json"
    path.write_text(Calibration.load().model_copy(update={"pairs": [with_lingua]}).model_dump_json())
    lang, _, model, _ = detect([INDONESIAN, MALAY], LangIdConfig(calibration=str(path)))
    assert model == ["lid176+lingua"] * 2 and lingua_share(model) == 1.0
    assert lang == ["id", "ms"]  # lingua's own log-odds decide here
    with pytest.raises(ValueError, match="lingua's probabilities"):
        features(("ms", "id"), ["lingua"], Inputs([MALAY], [["ms"]], [[1.0]]))


@pytest.mark.parametrize(
    "hostile", ["a\x00b kerana", "\x7f\x80 karena", "\ud800 bahawa", "", " ", "x" * 200_000, "🙂" * 5000]
)
def test_cld2_reads_hostile_text_without_raising(hostile: str):
    """CLD2 rejects control characters and surrogates as invalid UTF-8; the feature strips them, and a
    long text is read only up to its head, so the answer is a bounded number, never an exception."""
    (value,) = cld2_feature(("ms", "id"), _inputs([hostile]))
    assert -1.0 <= value <= 1.0


@pytest.mark.parametrize("backend", ["fasttext", "ensemble", "lingua"])
def test_lone_surrogates_get_a_label_not_a_crash(backend: str):
    """`refinery langid detect $'\\xff'` hands Python a surrogate-escaped argument, and json.loads
    accepts "\\ud800": neither fastText's binding, lingua nor CLD2 will encode such a str to UTF-8."""
    lang, score, _, _ = detect(["\udcff\udcfe " + INDONESIAN, "\ud800"], LangIdConfig(backend=backend))
    assert lang[0] == "id" and score[0] is not None and lang[1] is not None


def test_detector_log_odds_are_bounded_whatever_the_length(shared_data: Path):
    """Documents are far longer than the calibration sentences: no detector's log-odds may grow with
    length, or the fitted weights would mean something else on them."""
    ms, id_ = (" ".join(_report_lines(shared_data, code, 200)) for code in ("ms", "id"))
    columns = features(("ms", "id"), ["lid176", "lingua", "cld2"], _inputs([ms, id_]))
    assert np.all(np.abs(columns) <= np.log(1e3) + 1e-9)


def test_each_detector_leans_the_right_way_on_real_sentences(shared_data: Path):
    ms, id_ = (_report_lines(shared_data, code, 200) for code in ("ms", "id"))
    columns = features(("ms", "id"), ["lid176", "cld2"], _inputs(ms + id_))
    assert np.all(columns[: len(ms)].mean(0) > columns[len(ms) :].mean(0))


def test_fit_chooses_the_threshold_that_balances_the_two_bounds():
    """With one informative feature, the fitted threshold puts both languages above their bound."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(1, 1, 400), rng.normal(-1, 1, 400)][:, None]
    is_first = np.r_[np.ones(400, bool), np.zeros(400, bool)]
    coef, intercept, threshold = fit(x, is_first, best=(0.80, 0.95))
    says_first = x[:, 0] * coef[0] + intercept > threshold
    assert says_first[is_first].mean() >= 0.78 - 0.03 and (~says_first[~is_first]).mean() >= 0.93 - 0.03


def test_pair_model_config_is_validated_naming_the_field():
    with pytest.raises(ValidationError, match="detectors"):
        PairModel(languages=("ms", "id"), detectors=["langdetect"], coef=[1.0], intercept=0.0, threshold=0.0)
    with pytest.raises(ValidationError, match="coef has 1 weights for 2 detectors"):
        PairModel(
            languages=("ms", "id"), detectors=["lid176", "cld2"], coef=[1.0], intercept=0.0, threshold=0.0
        )
