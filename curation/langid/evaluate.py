"""Language-ID accuracy on folders of `<code>.txt` files (lingua's test-data layout), backends side by side.

Each file holds one text per line, labelled by its name. Lines alternate
between two halves: even lines (0, 2, ...) are the *calibration* half that
`curation.langid.calibrate` tunes the ensemble on, odd lines the *report* half
that accuracy is quoted on, so no figure is measured on data it was tuned on.
Overall accuracy is the mean over languages (each language counts once).
A language a backend cannot output at all is marked `supported: false`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from curation.langid.ensemble import LangIdConfig, detect, lingua_codes, lingua_share
from curation.langid.labels import from_lid176
from curation.langid.lid176 import LABEL_PREFIX, load_model

Half = Literal["all", "calibration", "report"]
BATCH = 2000
TOP_CONFUSIONS = 20


def read_folder(directory: Path, half: Half = "all", limit: int | None = None) -> tuple[list[str], list[str]]:
    """(texts, gold labels) of every `<code>.txt` in `directory`, restricted to one half of each file."""
    texts: list[str] = []
    gold: list[str] = []
    for path in sorted(p for p in directory.glob("*.txt") if p.is_file()):
        lines = [line for line in _utf8_text(path).splitlines() if line.strip()]
        if half != "all":
            lines = lines[0 if half == "calibration" else 1 :: 2]
        lines = lines[:limit] if limit else lines
        texts += lines
        gold += [path.stem] * len(lines)
    return texts, gold


class LanguageFileError(ValueError):
    """A `<code>.txt` file that cannot be read as UTF-8 text."""


def _utf8_text(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 name the file and line, since a guessed decoding
    would score a detector on text its writer never meant."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LanguageFileError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); convert the file to UTF-8"
        ) from None


def backend_languages(backend: str, model_path: str | None = None) -> set[str]:
    """The labels a backend can output."""
    fasttext = {
        from_lid176(label.removeprefix(LABEL_PREFIX)) for label in load_model(model_path).get_labels()
    }
    if backend == "fasttext":
        return fasttext
    return set(lingua_codes()) | (fasttext if backend == "ensemble" else set())


def predict_all(
    texts: Sequence[str], config: LangIdConfig
) -> tuple[list[str | None], list[str | None], float]:
    """Labels and deciding models for `texts`, batch by batch, and the seconds it took."""
    labels: list[str | None] = []
    models: list[str | None] = []
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        lang, _, model, _ = detect(texts[i : i + BATCH], config)
        labels += lang
        models += model
    return labels, models, time.perf_counter() - start


def score(gold: Sequence[str], predicted: Sequence[str | None], supported: set[str]) -> dict:
    """Per-language accuracy, macro means, and the most frequent (gold, predicted) confusions."""
    right: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        seen[g] += 1
        if p == g:
            right[g] += 1
        else:
            confusions[(g, p or "none")] += 1
    per = {code: right[code] / seen[code] for code in sorted(seen)}
    ok = [acc for code, acc in per.items() if code in supported]
    return {
        "overall": sum(per.values()) / len(per) if per else None,
        "overall_supported": sum(ok) / len(ok) if ok else None,
        "per_language": {
            code: {"accuracy": round(acc, 4), "texts": seen[code], "supported": code in supported}
            for code, acc in per.items()
        },
        "confusions": [
            {"gold": g, "predicted": p, "count": c} for (g, p), c in confusions.most_common(TOP_CONFUSIONS)
        ],
    }


def evaluate_texts(
    texts: Sequence[str], gold: Sequence[str], backends: Sequence[str], base: LangIdConfig | None = None
) -> dict[str, dict]:
    """Accuracy, confusions and throughput of each backend on the same texts; `base` carries what
    every backend shares (the lid.176 file, the ensemble's calibration)."""
    base = base or LangIdConfig()
    out: dict[str, dict] = {}
    for backend in backends:
        predicted, models, seconds = predict_all(texts, base.model_copy(update={"backend": backend}))
        result = score(gold, predicted, backend_languages(backend, base.model))
        result["texts_per_s"] = round(len(texts) / seconds, 1) if seconds else None
        result["routed_to_lingua"] = round(lingua_share(models), 4)
        out[backend] = result
    return out


def evaluate_folder(
    directory: Path,
    limit: int | None = None,
    base: LangIdConfig | None = None,
    backends: Sequence[str] = ("fasttext", "ensemble", "lingua"),
    half: Half = "report",
) -> dict:
    """`evaluate_texts` over one folder: every backend on the same half of every file."""
    texts, gold = read_folder(directory, half, limit)
    return {
        "texts": len(texts),
        "languages": len(set(gold)),
        "half": half,
        "backends": evaluate_texts(texts, gold, backends, base),
    }
