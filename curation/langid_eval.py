"""Language-ID accuracy on a folder of `<iso639-1>.txt` files (lingua's test-data layout).

lid.176 has no Norwegian Bokmål label: it calls Bokmål `no`, so `nb` files count
`no` as correct. Languages the model cannot output at all (Ganda, Shona, Sotho,
Tswana, Tsonga, Xhosa, Zulu for lid.176) are reported with `supported: false`
and kept out of the overall accuracy of supported languages (and in the overall
of all files).
"""

from __future__ import annotations

from pathlib import Path

from curation.langid import LABEL_PREFIX, load_model, predict

ALIASES = {"nb": {"nb", "no"}}


def model_languages(model_path: str | None = None) -> set[str]:
    return {label.removeprefix(LABEL_PREFIX) for label in load_model(model_path).get_labels()}


def evaluate_folder(directory: Path, limit: int | None = None, model_path: str | None = None) -> dict:
    """Accuracy per language (top-1 label = file name) and overall, for one folder."""
    known = model_languages(model_path)
    per_lang: dict[str, dict] = {}
    total = correct = total_supported = correct_supported = 0
    for path in sorted(directory.glob("*.txt")):
        code = path.stem
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if limit:
            lines = lines[:limit]
        if not lines:
            continue
        labels, _ = predict(lines, model_path, k=1)
        accepted = ALIASES.get(code, {code})
        right = sum(1 for row in labels if row and row[0] in accepted)
        supported = bool(accepted & known)
        per_lang[code] = {"accuracy": right / len(lines), "texts": len(lines), "supported": supported}
        total += len(lines)
        correct += right
        if supported:
            total_supported += len(lines)
            correct_supported += right
    return {
        "overall": correct / total if total else None,
        "overall_supported": correct_supported / total_supported if total_supported else None,
        "texts": total,
        "languages": len(per_lang),
        "per_language": per_lang,
    }
