"""Curation commands: `refinery quality train|eval`, `refinery langid eval|detect`, `refinery decontam`.

Every command but `langid detect` prints one JSON object on stdout so scripts can
read the result. Strings in it may come from the corpus (document ids, file
names, texts), so each goes through `for_terminal` first: JSON escapes C0
controls but prints C1 controls and bidi overrides as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pipelines.framework.cli_options import output_file
from pipelines.framework.terminal_text import for_terminal

if TYPE_CHECKING:
    from curation.langid.ensemble import LangIdConfig

quality_app = typer.Typer(help="Train and evaluate fastText quality classifiers.", no_args_is_help=True)
langid_app = typer.Typer(help="Language identification tools.", no_args_is_help=True)
BACKENDS = ("fasttext", "ensemble", "lingua")
HALVES = ("report", "calibration", "all")


@langid_app.callback()
def _langid_group() -> None:
    """Language identification tools (a group, so `langid eval` keeps its name with one command)."""


def _terminal_safe(value: Any) -> Any:
    """`value` with every string in it (keys too) passed through `for_terminal`."""
    if isinstance(value, str):
        return for_terminal(value)
    if isinstance(value, dict):
        return {_terminal_safe(k): _terminal_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_terminal_safe(v) for v in value]
    return value


def _echo(payload: dict) -> None:
    typer.echo(json.dumps(_terminal_safe(payload), ensure_ascii=False))


def _table_texts(lake: str, table: str, column: str, limit: int | None) -> list[str]:
    """Up to `limit` texts of a lake table, read batch by batch (training sets are bounded by design)."""
    from pipelines.framework.lake import Lake

    texts: list[str] = []
    for batch in Lake(lake).dataset(table).to_batches(columns=[column]):
        texts += [t for t in batch.column(column).to_pylist() if t]
        if limit and len(texts) >= limit:
            return texts[:limit]
    return texts


@quality_app.command("train")
def quality_train(
    out: Path = typer.Option(..., "--out", "-o", help="model file to write (metadata goes to OUT.json)"),
    data: Path | None = typer.Option(None, help="JSONL with {text, label} (1 = high quality)"),
    positive: str | None = typer.Option(None, help="lake table of high-quality reference text"),
    negative: str | None = typer.Option(None, help="lake table of random crawl text"),
    lake: str = typer.Option("lake", help="lake root (folder or URL) for --positive/--negative"),
    text_column: str = typer.Option("text", help="text column of the tables"),
    max_docs: int = typer.Option(100_000, help="at most this many documents per table"),
    epoch: int = typer.Option(25, min=1),
    lr: float = typer.Option(0.5, min=0.0, max=10.0),
    word_ngrams: int = typer.Option(2, min=1, max=5),
) -> None:
    """Train a fastText classifier from labelled JSONL or from a positive and a negative table."""
    from curation.quality.model import TrainParams, train

    if data is not None and (positive or negative):
        raise typer.BadParameter("give --data, or --positive and --negative, not both")
    output_file(out, "model file", "--out")
    if data is not None:
        texts, labels = _labelled(data)
        source = str(data)
    elif positive and negative:
        pos = _table_texts(lake, positive, text_column, max_docs)
        neg = _table_texts(lake, negative, text_column, max_docs)
        texts, labels = pos + neg, [1] * len(pos) + [0] * len(neg)
        source = f"positive={lake}/{positive} negative={lake}/{negative}"
    else:
        raise typer.BadParameter("give --data FILE, or both --positive TABLE and --negative TABLE")
    try:
        _echo(train(texts, labels, out, TrainParams(epoch=epoch, lr=lr, word_ngrams=word_ngrams), source))
    except ValueError as exc:  # one class only, or a file fastText cannot write
        raise typer.BadParameter(str(exc)) from None


def _labelled(data: Path) -> tuple[list[str], list[int]]:
    """`read_labeled`, with a bad file or line (named with its line by the reader) as a usage error."""
    from curation.quality.model import read_labeled

    try:
        texts, labels = read_labeled(data)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    if not texts:
        raise typer.BadParameter(f"{data}: no labelled lines", param_hint="--data")
    return texts, labels


@quality_app.command("eval")
def quality_eval(
    model: Path = typer.Option(..., help="model written by `quality train`"),
    data: Path = typer.Option(..., help="JSONL with {text, label}"),
    threshold: float = typer.Option(
        0.5, min=0.0, max=1.0, help="score at which a document counts as high quality"
    ),
) -> None:
    """Accuracy, precision, recall and ROC AUC of a model on labelled data, as JSON."""
    from curation.quality.model import metrics, score_texts

    if not model.is_file():
        why = "is a folder" if model.is_dir() else "does not exist"
        raise typer.BadParameter(
            f"model {model} {why}; name the file `quality train` wrote", param_hint="--model"
        )
    texts, labels = _labelled(data)
    try:
        scores = score_texts(model, texts)
    except ValueError as exc:  # fastText: not a model file
        raise typer.BadParameter(f"{model}: not a fastText model ({exc})", param_hint="--model") from None
    _echo(metrics(labels, scores, threshold))


CALIBRATION_OPTION = typer.Option(
    None,
    help="the ensemble's calibration JSON, from `python -m curation.langid.calibrate` (default: the bundled one)",
)


def _langid_config(calibration: Path | None, **fields: str | None) -> LangIdConfig:
    """A LangIdConfig from command-line values (the backend already checked); a calibration file
    that will not load is a usage error naming the file and its fields."""
    from pydantic import ValidationError

    from curation.langid.ensemble import LangIdConfig
    from pipelines.framework.validation import field_problems

    try:
        return LangIdConfig(calibration=str(calibration) if calibration else None, **fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise typer.BadParameter(for_terminal(field_problems(exc)), param_hint="--calibration") from exc


@langid_app.command("eval")
def langid_eval(
    directory: Path = typer.Argument(..., help="folder of <language>.txt files, one text per line"),
    limit: int | None = typer.Option(
        None, min=1, help="only the first N lines of each file (of the half read)"
    ),
    model: Path | None = typer.Option(None, help="lid.176 model (default: the bundled one)"),
    backend: list[str] = typer.Option(
        ["fasttext", "ensemble", "lingua"], "--backend", "-b", help="backend(s) to compare (repeatable)"
    ),
    half: str = typer.Option(
        "report", help="report (odd lines, never calibrated on), calibration (even lines) or all"
    ),
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Per-language accuracy, confusion pairs and throughput of each backend side by side, as JSON."""
    from curation.langid.evaluate import LanguageFileError, evaluate_folder

    if not directory.is_dir():
        raise typer.BadParameter(f"{for_terminal(str(directory))} is not a folder", param_hint="DIRECTORY")
    if not any(directory.glob("*.txt")):
        shown = for_terminal(str(directory))
        raise typer.BadParameter(f"{shown}: no <language>.txt files there", param_hint="DIRECTORY")
    unknown = sorted(set(backend) - set(BACKENDS))
    if unknown:
        raise typer.BadParameter(
            f"unknown backend(s) {unknown}; choose from {list(BACKENDS)}", param_hint="--backend"
        )
    if half not in HALVES:
        raise typer.BadParameter(f"half must be one of {list(HALVES)}", param_hint="--half")
    base = _langid_config(model=str(model) if model else None, calibration=calibration)
    try:
        result = evaluate_folder(directory, limit, base, backend, half)  # type: ignore[arg-type]
    except LanguageFileError as exc:
        raise typer.BadParameter(for_terminal(str(exc)), param_hint="DIRECTORY") from exc
    except ValueError as exc:  # fastText: --model is not a model file
        raise typer.BadParameter(for_terminal(str(exc)), param_hint="--model") from exc
    _echo(result)


@langid_app.command("detect")
def langid_detect(
    source: str = typer.Argument(
        ..., help="a text, or a file (one text per line, or --whole; JSONL: each text field)"
    ),
    backend: str = typer.Option("ensemble", help="fasttext, ensemble or lingua"),
    whole: bool = typer.Option(False, "--whole", help="read FILE as one document, not one text per line"),
    excerpt: int = typer.Option(60, min=0, help="characters of each text shown after its label"),
    as_text: bool = typer.Option(
        False, "--text", help="SOURCE is the text itself, even if it looks like a path"
    ),
    text_field: str = typer.Option("text", help="the field holding the text in a JSONL file"),
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Print label, score, deciding model and script for each text, then the text (escaped)."""
    from curation.langid.ensemble import detect
    from curation.langid.labels import script_of

    if backend not in BACKENDS:
        raise typer.BadParameter(f"backend must be one of {list(BACKENDS)}", param_hint="--backend")
    texts = [source] if as_text else _detect_texts(Path(source), whole, text_field)
    langs, scores, models, _ = detect(texts, _langid_config(backend=backend, calibration=calibration))
    for text, lang, score, model in zip(texts, langs, scores, models, strict=True):
        shown = f"{score:.3f}" if score is not None else "-"
        typer.echo(
            f"{lang or '-'}\t{shown}\t{model or '-'}\t{script_of(lang, text) or '-'}\t"
            f"{for_terminal(text, max_chars=excerpt)}"
        )


PATH_LIKE = re.compile(r"^\S*(/|\.(txt|jsonl|json|gz|zst|md|html?)$)\S*$")
BINARY_PROBE_BYTES = 8192


def _detect_texts(path: Path, whole: bool, text_field: str) -> list[str]:
    """The texts `detect` labels: a file's lines (split at \\n only, so the output lines up with the
    file's), its JSONL text fields, or the argument itself. A mistyped file name is not quietly
    labelled as a text, and a binary file is refused rather than read as thousands of "texts"."""
    shown = for_terminal(str(path))
    if path.is_dir():
        raise typer.BadParameter(
            f"{shown} is a folder (`refinery langid eval` reads one)", param_hint="SOURCE"
        )
    if not path.is_file():
        if PATH_LIKE.match(str(path)):
            raise typer.BadParameter(f"no file {shown} (--text labels it as a text)", param_hint="SOURCE")
        return [str(path)]
    with path.open("rb") as handle:
        if b"\0" in handle.read(BINARY_PROBE_BYTES):
            raise typer.BadParameter(f"{shown} is a binary file, not text", param_hint="SOURCE")
    if not whole and any(path.name.endswith(ext) for ext in (".jsonl", ".jsonl.gz", ".jsonl.zst")):
        return [text for _, text in _documents(path, text_field, "id") if text.strip()]
    content = path.read_text(encoding="utf-8", errors="replace")
    return [content] if whole else [line for line in content.split("\n") if line.strip()]


def _documents(path: Path, text_field: str, id_field: str) -> Iterator[tuple[str, str]]:
    """(id, text) of every document in a JSONL(.gz/.zst) file, a text file, or a Delta table folder."""
    if path.is_dir():
        yield from _table_documents(path, text_field, id_field)
        return
    if path.suffix == ".txt":
        yield str(path), path.read_text(encoding="utf-8", errors="replace")
        return
    from pipelines.ingest.readers.jsonl import JsonLinesError, json_lines

    try:
        for lineno, record in json_lines(path):
            text = record.get(text_field) or ""
            if not isinstance(text, str):
                raise JsonLinesError(
                    f"{path}:{lineno}: {text_field} is a {type(text).__name__}, not a string"
                )
            yield str(record.get(id_field, f"{path}:{lineno}")), text
    except JsonLinesError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATHS") from None


def _table_documents(path: Path, text_field: str, id_field: str) -> Iterator[tuple[str, str]]:
    """(id, text) of a Delta table folder; a folder that is not one, or whose files will not read, is
    a usage error naming it."""
    import pyarrow as pa
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    from pipelines.framework.lake import snapshot_dataset, without_backtrace

    if not (path / "_delta_log").is_dir():
        raise typer.BadParameter(
            f"{path} is a folder but not a Delta table (no _delta_log)", param_hint="PATHS"
        )
    try:
        dataset = snapshot_dataset(DeltaTable(str(path)))
        if missing := {id_field, text_field} - set(dataset.schema.names):
            raise typer.BadParameter(f"{path} has no column {', '.join(sorted(missing))}", param_hint="PATHS")
        for batch in dataset.to_batches(columns=[id_field, text_field]):
            yield from zip(
                batch.column(id_field).to_pylist(), batch.column(text_field).to_pylist(), strict=True
            )
    except (DeltaError, OSError, pa.ArrowException) as exc:
        raise typer.BadParameter(
            f"{path}: cannot be read ({without_backtrace(exc)})", param_hint="PATHS"
        ) from None


def decontam(
    paths: list[Path] = typer.Argument(..., help="JSONL(.gz)/.txt files or Delta table folders to check"),
    benchmark: list[Path] = typer.Option(
        ..., "--benchmark", "-b", help="benchmark JSONL/CSV file (repeatable)"
    ),
    field: list[str] = typer.Option(
        [], "--field", "-f", help="benchmark field(s) to protect (default: question, prompt, ...)"
    ),
    ngram: int = typer.Option(13, min=1, help="n-gram length in words"),
    min_matches: int = typer.Option(1, min=1, help="matched n-grams at which a document is contaminated"),
    text_field: str = typer.Option("text"),
    id_field: str = typer.Option("doc_id", help="id field of JSONL records / table column"),
) -> None:
    """Report which documents share word n-grams with the benchmarks, as JSON."""
    from curation.decontam.index import BenchmarkFileError, BenchmarkSpec, DecontamIndex

    try:
        index = DecontamIndex.build([BenchmarkSpec(b, None, field or None) for b in benchmark], ngram)
    except BenchmarkFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--benchmark") from exc
    checked, hits = 0, []
    for path in paths:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATHS")
        for doc_id, text in _documents(path, text_field, id_field):
            checked += 1
            count, name = index.match(text)
            if count >= min_matches:
                hits.append({"path": str(path), "id": doc_id, "benchmark": name, "ngrams": count})
    _echo({"documents": checked, "contaminated": len(hits), "benchmarks": index.stats, "matches": hits})
