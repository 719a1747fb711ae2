"""Fit the ensemble's routing and fusion weights on the calibration half of lingua's sentences.

    python -m curation.langid.calibrate DIR   # DIR = langid/lingua/language-testdata/sentences

Writes `curation/langid/calibration.json`. For each (threshold, weight) of a
small grid, every lid.176 label gets the route that helps on the calibration
half: `always` (lingua decides every text lid.176 gives that label), `below`
(only under the threshold) or none; the pair with the best mean per-language
accuracy wins. Then each routed label gets the weight of lid.176 in the fusion
that least lets languages fall more than 2 points below the better single
model: labels trade accuracy between languages (more Malay found among texts
lid.176 calls `id` is more Indonesian lost), so one shared weight would favour
one side. Last, Malay/Indonesian, which no weight keeps both within 2 points,
get a pair model (`curation.langid.pair`): of the sets of detectors that
include lid.176, the one with the best cross-validated slack on the
calibration half (the smaller set on a tie), refitted on all of it. Nothing is fitted on the report half.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from curation.langid.ensemble import (
    CALIBRATION_FILE,
    FT_TOP_K,
    ROUTE_ALWAYS,
    ROUTE_BELOW,
    Calibration,
    _fasttext,
    fasttext_matrix,
    fuse,
    lingua_codes,
    lingua_probabilities,
)
from curation.langid.evaluate import LanguageFileError, read_folder
from curation.langid.pair import FEATURES, Inputs, PairModel, cross_validated_slack, features, fit

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
WEIGHTS = (0.0, 0.1, 0.2, 0.3)
LABEL_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
ALLOWANCE = 0.02  # a language may fall this far below the better single model (the bound)
# lid.176's known confusions (docs/curation.md): the languages of one group are told apart by lingua + fusion.
GROUPS = ({"bs", "hr", "sr", "hbs"}, {"nb", "nn", "da"}, {"ms", "id"})
GROUPED = set().union(*GROUPS)
MIN_GAIN = 1
PAIRS = (("ms", "id"),)  # groups of two that the fusion alone cannot keep within ALLOWANCE
MIN_PAIR_TEXTS = 25  # per language: five folds of at least five texts of each
BASE_DETECTORS = (
    "lid176",
)  # every pair model weighs lid.176 (it runs on every text); others are tried on top


class Measured:
    """Both models' outputs on the calibration texts, computed once and re-fused per grid point."""

    def __init__(self, texts: list[str], gold: list[str]):
        self.texts = texts
        self.gold = np.array(gold)
        self.ft_labels, self.ft_scores = _fasttext(texts, None)
        self.top = np.array([row[0] for row in self.ft_labels])
        self.top_score = np.array([row[0] for row in self.ft_scores])
        self.lingua = lingua_probabilities(texts)
        self.ft = fasttext_matrix(self.ft_labels, self.ft_scores)
        self.codes = np.array(lingua_codes())
        self.lingua_top = self.codes[self.lingua.argmax(1)]
        self.languages = sorted(set(gold))
        self.ft_accuracy = self.per_language(self.top)
        self.lingua_accuracy = self.per_language(self.lingua_top)

    def fused(self, calibration: Calibration, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The fused label of each text (of `rows`), whether or not it would be routed."""
        best, _ = fuse(self.ft[rows], self.top[rows], self.lingua[rows], calibration)
        return self.codes[best]

    def per_language(self, predicted: np.ndarray) -> dict[str, float]:
        return {code: float(np.mean(predicted[self.gold == code] == code)) for code in self.languages}


def fit_routes(m: Measured, fused: np.ndarray, threshold: float) -> dict[str, str]:
    """For each lid.176 label: route always, below the threshold, or never, whichever gains most.

    Only a confusable group's labels may go `always`: on this data a label like
    `en` would too (lingua recovers the Zulu that lid.176 calls English), but on
    real web text that routes nearly every document for a language this data
    holds little of. A route must also gain `MIN_GAIN` texts, not one or two.
    """
    gain = fused == m.gold
    keep = m.top == m.gold
    delta = gain.astype(int) - keep.astype(int)
    always: dict[str, int] = defaultdict(int)
    below: dict[str, int] = defaultdict(int)
    for label, p, d in zip(m.top, m.top_score, delta, strict=True):
        always[label] += d
        if p < threshold:
            below[label] += d
    routes = {}
    for label in always:
        if label in GROUPED and always[label] > max(below[label], MIN_GAIN - 1):
            routes[label] = ROUTE_ALWAYS
        elif below[label] >= MIN_GAIN:
            routes[label] = ROUTE_BELOW
    return routes


def predictions(m: Measured, fused: np.ndarray, calibration: Calibration) -> np.ndarray:
    modes = np.array([calibration.routes.get(label, "") for label in m.top])
    routed = (modes == ROUTE_ALWAYS) | ((modes == ROUTE_BELOW) & (m.top_score < calibration.threshold))
    return np.where(routed, fused, m.top)


def shortfall(m: Measured, per: dict[str, float]) -> float:
    """Total accuracy by which languages fall more than `ALLOWANCE` below the better single model."""
    return sum(max(0.0, max(m.ft_accuracy[c], m.lingua_accuracy[c]) - ALLOWANCE - per[c]) for c in per)


def calibrate(texts: list[str], gold: list[str], source: str) -> Calibration:
    m = Measured(texts, gold)
    best: tuple[float, Calibration] | None = None
    for weight in WEIGHTS:
        draft = Calibration(threshold=1.0, weight=weight, routes={}, source=source)
        fused = m.fused(draft)
        for threshold in THRESHOLDS:
            trial = draft.model_copy(
                update={"threshold": threshold, "routes": fit_routes(m, fused, threshold)}
            )
            accuracy = float(np.mean(list(m.per_language(predictions(m, fused, trial)).values())))
            if best is None or accuracy > best[0]:
                best = (accuracy, trial)
    assert best is not None
    calibration = best[1]
    fused = m.fused(calibration)
    for label in sorted(calibration.routes):
        rows = np.flatnonzero(m.top == label)
        scored = []
        for weight in LABEL_WEIGHTS:
            trial = calibration.model_copy(
                update={"label_weights": {**calibration.label_weights, label: weight}}
            )
            fused[rows] = m.fused(trial, rows)
            per = m.per_language(predictions(m, fused, trial))
            scored.append((shortfall(m, per), -float(np.mean(list(per.values()))), weight))
        chosen = min(scored)[2]
        if chosen != calibration.weight:
            calibration.label_weights[label] = chosen
        fused[rows] = m.fused(calibration, rows)
    predicted = predictions(m, fused, calibration)
    fitted = (fit_pair(m, predicted, pair) for pair in PAIRS)
    calibration.pairs = [model for model in fitted if model is not None]
    return calibration


def fit_pair(m: Measured, predicted: np.ndarray, pair: tuple[str, str]) -> PairModel | None:
    """The pair model over the texts of the pair's languages that the ensemble labels one of them
    (the only texts it will decide), with the detector set that cross-validates best; None where
    either language has too few such texts to cross-validate (its labels then stay the fusion's)."""
    rows = np.flatnonzero(np.isin(m.gold, pair) & np.isin(predicted, pair))
    counts = [int(np.sum(m.gold[rows] == c)) for c in pair]
    if min(counts) < MIN_PAIR_TEXTS:
        print(
            f"{'/'.join(pair)}: {counts} texts, under {MIN_PAIR_TEXTS} each: no pair model", file=sys.stderr
        )
        return None
    inputs = Inputs(
        [m.texts[i] for i in rows],
        [m.ft_labels[i] for i in rows],
        [m.ft_scores[i] for i in rows],
        m.lingua[rows],
        list(m.codes),
    )
    columns = dict(zip(FEATURES, features(pair, list(FEATURES), inputs).T, strict=True))
    is_first = m.gold[rows] == pair[0]
    best = [max(m.ft_accuracy[c], m.lingua_accuracy[c]) for c in pair]
    totals = [int(np.sum(m.gold == c)) for c in pair]
    extra = [name for name in FEATURES if name not in BASE_DETECTORS]
    candidates = [
        [*BASE_DETECTORS, *chosen]
        for k in range(len(extra) + 1)
        for chosen in itertools.combinations(extra, k)
    ]

    def stacked(detectors: list[str]) -> np.ndarray:
        return np.column_stack([columns[name] for name in detectors])

    detectors = max(candidates, key=lambda d: cross_validated_slack(stacked(d), is_first, best, totals))
    coef, intercept, threshold = fit(stacked(detectors), is_first, best, totals)
    return PairModel(
        languages=pair, detectors=detectors, coef=coef.tolist(), intercept=intercept, threshold=threshold
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="lingua's sentences folder")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    args = parser.parse_args()
    if not args.directory.is_dir() or not any(args.directory.glob("*.txt")):
        parser.error(f"{args.directory}: no <language>.txt files there (give lingua's sentences folder)")
    try:
        texts, gold = read_folder(args.directory, "calibration")
    except LanguageFileError as exc:
        parser.error(str(exc))
    source = (
        f"lingua test data, sentences, calibration half (even lines) of {len(set(gold))} files, "
        f"{len(texts)} texts; lid.176 top-{FT_TOP_K}"
    )
    calibration = calibrate(texts, gold, source)
    args.out.write_text(
        json.dumps(calibration.model_dump(), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(json.dumps({"threshold": calibration.threshold, "weight": calibration.weight}))


if __name__ == "__main__":
    main()
