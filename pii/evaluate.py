"""Span-level precision, recall and F1 on data in presidio-research's format, ours beside Presidio's default.

Data: `[{"full_text": str, "spans": [{"entity_type", "start_position", "end_position"}]}]`
(presidio-research's `generated_*.json`). Gold labels are renamed with
presidio-research's mapping (`ENTITY_MAPPING`: STREET_ADDRESS/GPE/ADDRESS to
LOCATION, DOMAIN_NAME to URL, TITLE/PREFIX/AGE/ZIP to nothing, ...). Only the
entity types the configuration enables are scored; gold spans of other types are
ignored, as presidio-research does when it evaluates a subset of entities.

Halves: rules are tuned on the `tune` half of a file and reported on the `report`
half (`split`). A record's half is decided by its template (presidio-research
generates several sentences from each template), so no sentence pattern seen while
tuning is scored in the report.

A prediction is a true positive when a gold span of the same type has exactly
the same start and end (`match="exact"`), or overlaps it (`match="overlap"`,
each gold span matched at most once).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pii.settings import PiiSettings

ENTITY_MAPPING: dict[str, str | None] = {
    "PERSON": "PERSON",
    "FIRST_NAME": "PERSON",
    "LAST_NAME": "PERSON",
    "NAME": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN_CODE",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "CRYPTO": "CRYPTO",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "DATE_TIME": "DATE_TIME",
    "BIRTHDAY": "DATE_TIME",
    "DOMAIN_NAME": "URL",
    "URL": "URL",
    "LOCATION": "LOCATION",
    "ADDRESS": "LOCATION",
    "STREET_ADDRESS": "LOCATION",
    "GPE": "LOCATION",
    "CITY": "LOCATION",
    "COUNTRY": "LOCATION",
    "NRP": "NRP",
    "NATIONALITY": "NRP",
    "ORGANIZATION": "ORGANIZATION",
    "ORG": "ORGANIZATION",
    "TITLE": None,
    "PREFIX": None,
    "AGE": None,
    "ZIP": None,
    "ZIP_CODE": None,
}

Predictor = Callable[[Sequence[str]], list[list[tuple[str, int, int]]]]


class EvalDataError(ValueError):
    """The evaluation file is not in presidio-research's format; the message names the record."""


def load_samples(path: str | Path) -> list[dict[str, Any]]:
    """Records with `full_text` and `spans`, validated so that a bad file fails with its record number."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalDataError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, list):
        raise EvalDataError(f"{path}: expected a JSON list of records with full_text and spans")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or not isinstance(rec.get("full_text"), str) or "spans" not in rec:
            raise EvalDataError(f"{path}: record {i} lacks full_text (string) or spans")
        for span in rec["spans"]:
            if not {"entity_type", "start_position", "end_position"} <= set(span):
                raise EvalDataError(
                    f"{path}: record {i} has a span without entity_type/start_position/end_position"
                )
    return data


HALVES = ("all", "tune", "report")


def half_of(record: dict[str, Any]) -> str:
    """`tune` or `report`: the first byte of sha256 of the record's template_id (its text without one)."""
    key = record.get("template_id")
    basis = f"template:{key}" if key is not None else f"text:{record['full_text']}"
    return "tune" if hashlib.sha256(basis.encode("utf-8")).digest()[0] % 2 == 0 else "report"


def split(records: Sequence[dict[str, Any]], half: str) -> list[dict[str, Any]]:
    """The records of one half (`all` keeps every record)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, not {half!r}")
    return [r for r in records if half == "all" or half_of(r) == half]


def gold_spans(record: dict[str, Any], entities: Iterable[str]) -> list[tuple[str, int, int]]:
    keep = set(entities)
    out = []
    for span in record["spans"]:
        label = ENTITY_MAPPING.get(span["entity_type"], span["entity_type"])
        if label in keep:
            out.append((label, int(span["start_position"]), int(span["end_position"])))
    return out


def _match(pred: list[tuple[str, int, int]], gold: list[tuple[str, int, int]], mode: str) -> list[bool]:
    """For each prediction, whether it is a true positive (greedy one-to-one matching)."""
    free = list(gold)
    hits = []
    for etype, start, end in pred:
        found = None
        for g in free:
            same = (g[1], g[2]) == (start, end) if mode == "exact" else (g[1] < end and start < g[2])
            if g[0] == etype and same:
                found = g
                break
        if found is not None:
            free.remove(found)
        hits.append(found is not None)
    return hits


def score(
    records: Sequence[dict[str, Any]],
    predictions: Sequence[list[tuple[str, int, int]]],
    entities: Sequence[str],
    match: str = "exact",
) -> dict[str, Any]:
    """Per-type and overall (micro) precision, recall, F1 and counts."""
    tp, fp, fn = Counter(), Counter(), Counter()
    keep = set(entities)
    for rec, pred in zip(records, predictions, strict=True):
        gold = gold_spans(rec, entities)
        pred = [p for p in pred if p[0] in keep]
        hits = _match(pred, gold, match)
        for p, hit in zip(pred, hits, strict=True):
            (tp if hit else fp)[p[0]] += 1
        for etype in {g[0] for g in gold}:
            fn[etype] += sum(1 for g in gold if g[0] == etype) - sum(
                1 for p, hit in zip(pred, hits, strict=True) if hit and p[0] == etype
            )

    def prf(t: int, p: int, n: int) -> dict[str, float | int]:
        precision = t / (t + p) if t + p else 0.0
        recall = t / (t + n) if t + n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "tp": t,
            "fp": p,
            "fn": n,
        }

    per_type = {e: prf(tp[e], fp[e], fn[e]) for e in entities}
    overall = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"match": match, "documents": len(records), "per_type": per_type, "overall": overall}


def ours_predictor(settings: PiiSettings) -> Predictor:
    from pii.engine import get_analyzer

    analyzer = get_analyzer(settings)

    def predict(texts: Sequence[str]) -> list[list[tuple[str, int, int]]]:
        return [[(r.entity_type, r.start, r.end) for r in rs] for rs in analyzer.analyze_batch(texts)]

    return predict


def default_presidio(model: str):
    """Presidio's default AnalyzerEngine (default registry, thresholds, full spaCy pipeline) over `model`."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    import pii.engine  # noqa: F401  (installs the offline tldextract extractor presidio calls)

    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


def default_predictor(settings: PiiSettings) -> Predictor:
    """Presidio's default configuration, called per document, asked for the same entities."""
    engine = default_presidio(settings.spacy_model)
    entities = settings.all_entities()

    def predict(texts: Sequence[str]) -> list[list[tuple[str, int, int]]]:
        return [
            [(r.entity_type, r.start, r.end) for r in engine.analyze(t, language="en", entities=entities)]
            for t in texts
        ]

    return predict


def evaluate(
    records: Sequence[dict[str, Any]], settings: PiiSettings, predictor: Predictor, match: str = "exact"
) -> dict[str, Any]:
    predictions = predictor([r["full_text"] for r in records])
    return score(records, predictions, settings.all_entities(), match)


def misses(
    records: Sequence[dict[str, Any]],
    predictions: Sequence[list[tuple[str, int, int]]],
    entities: Sequence[str],
    context: int = 40,
) -> list[dict[str, Any]]:
    """Gold spans no prediction of their type overlaps (the worst misses: nothing of them was redacted),
    most frequent types first, with the text around them."""
    keep = set(entities)
    out = []
    for i, (rec, pred) in enumerate(zip(records, predictions, strict=True)):
        text = rec["full_text"]
        for etype, start, end in gold_spans(rec, keep):
            if any(p[0] == etype and p[1] < end and start < p[2] for p in pred):
                continue
            out.append(
                {
                    "record": i,
                    "entity_type": etype,
                    "value": text[start:end],
                    "before": text[max(0, start - context) : start],
                    "after": text[end : end + context],
                }
            )
    frequency = Counter(m["entity_type"] for m in out)
    return sorted(out, key=lambda m: (-frequency[m["entity_type"]], m["record"]))
