"""Two close languages told apart by more detectors, where the ensemble says one of them.

Malay and Indonesian are where the two-model fusion runs out (docs/curation.md):
lid.176 reads Malay as Indonesian, lingua less so, and every fusion weight that
finds more Malay loses more Indonesian. CLD2 errs on other sentences than
lid.176, so a logistic regression over the detectors' log-odds of the pair,
fitted on the calibration half, moves both languages at once. Calibration picks
the detectors by cross-validation: lid.176 + CLD2, which cross-validates better
than with lingua too and needs no lingua call on texts lid.176 was sure of. On
the report half of lingua's sentences Malay 0.224 -> 0.288 and Indonesian
0.872 -> 0.906 (BENCHMARKS.md, "Malay and Indonesian"); langid.py, word
frequencies and spelling markers were measured too and add nothing
(`benchmarks.langid_msid`).

Only the two labels are ever swapped: a text the ensemble gave a third language
keeps it, and a text of a third language that the ensemble called Malay stays
Malay or becomes Indonesian, so no other language's accuracy moves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

Detector = Literal["lid176", "lingua", "cld2"]
FLOOR = 1e-3  # a probability below this says "unlikely", no more (the same floor as the fusion's EPS)
THRESHOLDS = np.linspace(-6, 6, 1201)  # decision thresholds tried, in log-odds
MARGIN = 0.02  # issue 16: no language more than 2 points below the better single model
HEAD_CHARS = 2000  # CLD2 reads this much of a text (sentences are far shorter; documents
# are bounded so that the cost stays per document, like lingua's LINGUA_MAX_CHARS)
# CLD2 refuses C0/C1 controls and lone surrogates (it encodes to UTF-8): web text has both
UNREADABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class Inputs:
    """What the detectors read for a batch of texts: the texts and the models' outputs already at hand
    (lingua's only where the model weighs it: it costs ~4 ms a text where lid.176 costs 0.03)."""

    def __init__(
        self,
        texts: Sequence[str],
        ft_labels: Sequence[Sequence[str]],
        ft_scores: Sequence[Sequence[float]],
        lingua: np.ndarray | None = None,
        lingua_codes: Sequence[str] = (),
    ):
        self.texts, self.ft_labels, self.ft_scores = texts, ft_labels, ft_scores
        self.lingua, self.lingua_codes = lingua, list(lingua_codes)


def log_odds(p_first: float, p_second: float) -> float:
    return math.log(max(p_first, FLOOR)) - math.log(max(p_second, FLOOR))


def readable_head(text: str) -> str:
    return UNREADABLE.sub(" ", text[:HEAD_CHARS])


def lid176_feature(pair: tuple[str, str], x: Inputs) -> list[float]:
    out = []
    for labels, scores in zip(x.ft_labels, x.ft_scores, strict=True):
        p = dict(zip(labels, scores, strict=True))
        out.append(log_odds(p.get(pair[0], 0.0), p.get(pair[1], 0.0)))
    return out


def lingua_feature(pair: tuple[str, str], x: Inputs) -> list[float]:
    if x.lingua is None:
        raise ValueError("a pair model that weighs lingua needs lingua's probabilities in its Inputs")
    first, second = (x.lingua_codes.index(code) for code in pair)
    return [log_odds(row[first], row[second]) for row in x.lingua]


def cld2_feature(pair: tuple[str, str], x: Inputs) -> list[float]:
    """CLD2's share of the text in the first language minus its share in the second, in [-1, 1]."""
    import pycld2

    def one(text: str) -> float:
        try:
            share = {code: pct for _, code, pct, _ in pycld2.detect(text, bestEffort=True)[2]}
        except pycld2.error:  # bytes CLD2 will not read (it validates UTF-8 its own way): no opinion
            return 0.0
        return (share.get(pair[0], 0) - share.get(pair[1], 0)) / 100

    return [one(readable_head(text)) for text in x.texts]


FEATURES: dict[str, Callable[[tuple[str, str], Inputs], list[float]]] = {
    "lid176": lid176_feature,
    "lingua": lingua_feature,
    "cld2": cld2_feature,
}


def features(pair: tuple[str, str], detectors: Sequence[str], x: Inputs) -> np.ndarray:
    """One column per detector: its log-odds of the first language over the second, per text."""
    return np.column_stack([FEATURES[name](pair, x) for name in detectors])


class PairModel(BaseModel):
    """A fitted decision between two languages (`calibration.json`'s `pairs`)."""

    model_config = ConfigDict(extra="forbid")

    languages: tuple[str, str] = Field(description="the pair; the decision's positive side is the first")
    detectors: list[Detector] = Field(min_length=1, description="the detectors whose log-odds are weighed")
    coef: list[float] = Field(description="one weight per detector")
    intercept: float
    threshold: float = Field(description="log-odds above which the first language is chosen")

    @model_validator(mode="after")
    def _one_weight_per_detector(self) -> PairModel:
        if len(self.coef) != len(self.detectors):
            raise ValueError(f"coef has {len(self.coef)} weights for {len(self.detectors)} detectors")
        return self

    @property
    def name(self) -> str:
        """The `lang_model` of the texts it decides: its detectors, e.g. `lid176+cld2`."""
        return "+".join(self.detectors)

    def decision(self, x: Inputs) -> np.ndarray:
        return features(self.languages, self.detectors, x) @ np.array(self.coef) + self.intercept

    def decide(self, x: Inputs) -> tuple[list[str], list[float]]:
        """The language of each text and the fitted probability of that language."""
        margin = self.decision(x) - self.threshold
        first = 1 / (1 + np.exp(-margin))
        return (
            [self.languages[0] if m > 0 else self.languages[1] for m in margin],
            [float(p if m > 0 else 1 - p) for m, p in zip(margin, first, strict=True)],
        )


def slack(
    says_first: np.ndarray, is_first: np.ndarray, best: Sequence[float], totals: Sequence[int] | None = None
) -> float:
    """The smaller, over the two languages, of accuracy minus (better single model - MARGIN).

    `totals` are each language's number of texts where some of them are not among these rows (the
    ensemble gave them a third language, which this model never changes: they count as wrong)."""
    n_first, n_second = totals if totals is not None else (is_first.sum(), (~is_first).sum())
    return min(
        (says_first & is_first).sum() / n_first - (best[0] - MARGIN),
        (~says_first & ~is_first).sum() / n_second - (best[1] - MARGIN),
    )


def fit(
    x: np.ndarray, is_first: np.ndarray, best: Sequence[float], totals: Sequence[int] | None = None
) -> tuple[np.ndarray, float, float]:
    """(weights, intercept, threshold): a logistic regression, and the threshold that maximises the
    smaller slack on the same rows (the regression's own 0 balances errors, not the issue's bound)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(x, is_first)
    decision = model.decision_function(x)
    threshold = max(THRESHOLDS, key=lambda t: slack(decision > t, is_first, best, totals))
    return model.coef_[0], float(model.intercept_[0]), float(threshold)


def cross_validated_slack(
    x: np.ndarray,
    is_first: np.ndarray,
    best: Sequence[float],
    totals: Sequence[int] | None = None,
    folds: int = 5,
    seeds: int = 3,
) -> float:
    """The slack a fit can be expected to keep on sentences it has not seen: each fold labelled by a
    regression and threshold fitted on the others, averaged over shuffles."""
    from sklearn.model_selection import StratifiedKFold

    share = np.array(totals) / (is_first.sum(), (~is_first).sum()) if totals is not None else np.ones(2)
    slacks = []
    for seed in range(seeds):
        says_first = np.zeros(len(is_first), bool)
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, is_first):
            part = is_first[train]
            scaled = None if totals is None else np.round(share * (part.sum(), (~part).sum())).astype(int)
            coef, intercept, threshold = fit(x[train], part, best, scaled)
            says_first[test] = x[test] @ coef + intercept > threshold
        slacks.append(slack(says_first, is_first, best, totals))
    return float(np.mean(slacks))
