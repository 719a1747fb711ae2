"""Model-based quality: a fastText classifier, DCLM style (reference-quality text vs random crawl).

Labels are 1 (high quality) and 0. Training writes the model and, beside it,
`<model>.json` with what it was trained on and how, so a score can always be
traced to its data. Scores are P(label 1). Models load once per worker (cache
keyed by path). Defaults are sized for small labelled sets: a small hash bucket
keeps the model file in megabytes rather than the fastText default's gigabyte.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.framework.unicode_text import encodable
from pipelines.ingest.readers.jsonl import json_lines

POSITIVE = "__label__1"
NEGATIVE = "__label__0"
_WS = re.compile(r"\s+")
NAN_RETRIES = 4  # halvings of the learning rate after fastText diverges
_MODELS: dict[str, object] = {}


@dataclass(frozen=True)
class TrainParams:
    epoch: int = 25
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 64
    bucket: int = 200_000
    min_count: int = 1
    seed: int = 0


def clean(text: str | None) -> str:
    """One line, collapsed whitespace, lower case: the form fastText trains and predicts on."""
    return _WS.sub(" ", text or "").strip().lower()


LABELS = (0, 1, "0", "1")


def read_labeled(path: str | Path) -> tuple[list[str], list[int]]:
    """(texts, labels) from JSONL records {"text": ..., "label": 0|1}; a bad line names file:line."""
    texts, labels = [], []
    for lineno, record in json_lines(path):
        label, text = record.get("label"), record.get("text")
        if isinstance(label, bool) or label not in LABELS:  # 0.7 or true would read as a class silently
            raise ValueError(f"{path}:{lineno}: label must be 0 or 1, not {label!r}")
        if not isinstance(text, str):
            raise ValueError(f"{path}:{lineno}: text must be a string, not {type(text).__name__}")
        texts.append(encodable(text))
        labels.append(int(label))
    return texts, labels


def _fit(texts: Sequence[str], labels: Sequence[int], params: TrainParams) -> tuple[object, TrainParams]:
    """The trained model and the parameters it was trained with.

    fastText's SGD can diverge (its "Encountered NaN"), on some data at the default rate too: seen once
    in CI on the DCLM folds. Its own advice is a lower rate, so the rate is halved and training
    restarted, at most `NAN_RETRIES` times; the rate actually used goes into the model's metadata.
    """
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
        for text, label in zip(texts, labels, strict=True):
            handle.write(f"{POSITIVE if label else NEGATIVE} {clean(text)}\n")
    try:
        for attempt in range(NAN_RETRIES + 1):
            used = replace(params, lr=params.lr / 2**attempt)
            try:
                return _train_supervised(fasttext, handle.name, used), used
            except RuntimeError as exc:
                if "NaN" not in str(exc):
                    raise
        raise ValueError(
            f"fastText diverged (NaN) at every learning rate from {params.lr} down to {used.lr}; "
            "check the labelled data or pass a lower --lr"
        )
    finally:
        os.unlink(handle.name)


def _train_supervised(fasttext: Any, path: str, params: TrainParams) -> Any:
    return fasttext.train_supervised(
        input=path,
        epoch=params.epoch,
        lr=params.lr,
        wordNgrams=params.word_ngrams,
        dim=params.dim,
        bucket=params.bucket,
        minCount=params.min_count,
        seed=params.seed,
        thread=1,
        verbose=0,
    )


def _positive_prob(model, texts: Sequence[str | None]) -> np.ndarray:
    labels, probs = model.predict([clean(t) for t in texts], k=2)
    out = np.empty(len(texts))
    for i, (labs, ps) in enumerate(zip(labels, probs, strict=True)):
        out[i] = dict(zip(labs, np.asarray(ps, dtype=float), strict=True)).get(POSITIVE, 0.0)
    return np.clip(out, 0.0, 1.0)


def train(
    texts: Sequence[str],
    labels: Sequence[int],
    out: str | Path,
    params: TrainParams | None = None,
    source: str = "",
) -> dict:
    """Train, save `out` and `out.json` (metadata), and return the metadata."""
    params = params or TrainParams()
    if len(set(labels)) < 2:
        raise ValueError("training needs both labels (1 = high quality, 0 = other); got only one")
    model, used = _fit(texts, labels, params)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(out))
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    meta = {
        "model": str(out),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": source,
        "documents": len(texts),
        "positives": int(sum(labels)),
        "negatives": int(len(labels) - sum(labels)),
        "data_sha256": digest.hexdigest(),
        "params": asdict(used),
        "requested_lr": params.lr,
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "preprocessing": "whitespace collapsed to one space, lower-cased",
    }
    Path(f"{out}.json").write_text(json.dumps(meta, indent=2))
    return meta


def load(path: str | Path):
    key = str(path)
    model = _MODELS.get(key)
    if model is None:
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None
        model = _MODELS[key] = fasttext.load_model(key)
    return model


def score_texts(model_path: str | Path, texts: Sequence[str | None]) -> list[float]:
    """P(high quality) per text."""
    return _positive_prob(load(model_path), texts).tolist()


def metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict:
    """accuracy, precision, recall (at `threshold`) and ROC AUC."""
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    y = np.asarray(labels)
    pred = (np.asarray(scores) >= threshold).astype(int)
    return {
        "documents": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, scores)) if len(set(y.tolist())) == 2 else None,
    }


def cross_validate(
    texts: Sequence[str], labels: Sequence[int], folds: int = 5, params: TrainParams | None = None
) -> dict:
    """Stratified k-fold: pooled out-of-fold metrics, and per-fold AUC."""
    from sklearn.model_selection import StratifiedKFold

    params = params or TrainParams()
    y = np.asarray(labels)
    oof = np.zeros(len(y))
    fold_auc = []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=params.seed).split(
        np.zeros(len(y)), y
    ):
        model, _ = _fit([texts[i] for i in train_idx], y[train_idx].tolist(), params)
        oof[test_idx] = _positive_prob(model, [texts[i] for i in test_idx])
        fold_auc.append(metrics(y[test_idx].tolist(), oof[test_idx].tolist())["roc_auc"])
    return {**metrics(y.tolist(), oof.tolist()), "folds": folds, "fold_roc_auc": fold_auc}
