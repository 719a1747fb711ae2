"""`refinery pii ...`: scan files for PII, evaluate detection on labelled data, purge raw table versions.

Nothing printed here contains a detected value: scan shows each finding inside
its redacted context. Evaluation prints scores and the missed gold spans of the labelled file
(its own test data, escaped for the terminal).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from pydantic import ValidationError

from pii.settings import PiiSettings
from pipelines.framework.terminal_text import for_terminal
from pipelines.framework.unicode_text import has_lone_surrogates
from pipelines.framework.validation import field_problems
from pipelines.ingest.readers.compressed import STREAM_ERRORS, open_maybe_compressed
from pipelines.ingest.readers.jsonl import JSON_ERRORS, JsonLinesError, json_lines

app = typer.Typer(help="PII detection and redaction (Presidio, offline).", no_args_is_help=True)
MATCHES = ("exact", "overlap")
SCAN_BATCH = 256
CONTEXT_CHARS = 30
SHOWN_SKIPPED = 5  # locators of skipped texts listed in the report


def load_settings(config: Path | None, ner: bool | None = None) -> PiiSettings:
    """PiiSettings from a YAML file (the pii stage's config mapping); `ner` overrides the file."""
    from pii.stage import PiiConfig

    data = {}
    if config is not None:
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, ValueError, RecursionError, yaml.YAMLError) as exc:  # ValueError: not UTF-8
            raise typer.BadParameter(f"cannot read {config}: {exc}", param_hint="--config") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{config}: a mapping of the pii stage's settings, not a {type(data).__name__}"
        )
    if ner is not None:
        data["ner"] = ner
    try:
        return PiiConfig.model_validate(data).settings()
    except ValidationError as exc:
        raise typer.BadParameter(
            f"{config or 'settings'}: {field_problems(exc)}", param_hint="--config"
        ) from None


def iter_texts(path: Path) -> Iterator[tuple[str, str]]:
    """(locator, text) from a Delta table folder, a folder of files, .txt, or JSON lines/JSON with `text`."""
    if path.is_dir() and (path / "_delta_log").is_dir():
        from deltalake import DeltaTable

        from pipelines.framework.lake import snapshot_dataset

        dataset = snapshot_dataset(DeltaTable(str(path)))
        row = 0
        for batch in dataset.to_batches(columns=["text"]):
            for text in batch.column("text").to_pylist():
                if text is not None:
                    yield f"{path.name}:{row}", text
                row += 1
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            yield from iter_texts(child)
    elif path.suffix in (".txt", ".md"):
        yield str(path), path.read_text(encoding="utf-8", errors="replace")
    else:
        yield from _json_texts(path)


def _json_texts(path: Path) -> Iterator[tuple[str, str]]:
    """(locator, text) of a JSON array file (`text` or `full_text` per element), else of a JSON Lines file.

    A line that is not a JSON object stops the scan with its file and line (JsonLinesError).
    """
    with open_maybe_compressed(str(path)) as stream:
        if stream.peek(1)[:1] == b"[":
            for i, rec in enumerate(json.load(stream)):
                text = rec.get("text", rec.get("full_text")) if isinstance(rec, dict) else None
                if isinstance(text, str):
                    yield f"{path}:{i}", text
            return
    for line_no, rec in json_lines(path):
        if isinstance(rec.get("text"), str):
            yield f"{path}:{line_no}", rec["text"]


@app.command()
def scan(
    path: Annotated[Path, typer.Argument(exists=True, help="file, folder or Delta table folder")],
    config: Annotated[Path | None, typer.Option(help="YAML with the pii stage's settings")] = None,
    ner: Annotated[bool | None, typer.Option("--ner/--no-ner", help="override the config's ner")] = None,
    limit: Annotated[int, typer.Option(help="documents to scan at most")] = 10_000,
    show: Annotated[int, typer.Option(help="findings to list (in redacted context)")] = 20,
) -> None:
    """What would be redacted: counts by type and findings shown inside their redacted context."""
    from pii.engine import ner_decoder_used
    from pii.kernel import FAILED, redact_texts

    settings = load_settings(config, ner)
    counts: Counter[str] = Counter()
    findings, docs, with_pii = [], 0, 0
    batch: list[tuple[str, str]] = []

    failed: list[str] = []  # texts the analyzer raised on (past MAX_CHARS ...): the stage withholds them

    def flush() -> None:
        nonlocal with_pii
        for (locator, _), red in zip(batch, redact_texts([t for _, t in batch], settings), strict=True):
            if red["scope"] == FAILED:
                failed.append(locator)
                continue
            with_pii += bool(red["spans"])
            counts.update(red["counts"])
            for span in red["spans"]:
                if len(findings) < show:
                    lo, hi = max(0, span["start"] - CONTEXT_CHARS), span["end"] + CONTEXT_CHARS
                    findings.append({"doc": locator, **span, "context": red["text"][lo:hi]})
        batch.clear()

    skipped: list[str] = []  # texts no UTF-8 can hold: the pipeline quarantines them (invalid_unicode)
    try:
        for item in iter_texts(path):
            if docs >= limit:
                break
            if has_lone_surrogates(item[1]):
                skipped.append(item[0])
                continue
            batch.append(item)
            docs += 1
            if len(batch) >= SCAN_BATCH:
                flush()
    except (*STREAM_ERRORS, *JSON_ERRORS) as exc:  # a bad line, a damaged stream, a bad JSON array file
        _unreadable(path, exc)
    flush()
    report = {
        "documents": docs,
        "documents_with_pii": with_pii,
        "counts": dict(counts.most_common()),
        "ner_decoder": ner_decoder_used(settings),
    }
    report.update(_set_aside(skipped, failed))
    # ASCII JSON: lossless, and no C1 or bidi control from a finding reaches the terminal raw.
    typer.echo(json.dumps({**report, "findings": findings}, indent=2))


def _unreadable(path: Path, exc: BaseException) -> NoReturn:
    said = (
        str(exc)
        if isinstance(exc, JsonLinesError)
        else f"{path}: cannot be read ({type(exc).__name__}: {exc})"
    )
    typer.echo(f"error: {for_terminal(said)}", err=True)
    raise typer.Exit(2) from None


def _set_aside(skipped: list[str], failed: list[str]) -> dict:
    """The report's entries for texts the scan did not count, each said on stderr too."""
    entries = {}
    for key, locators, why in (
        (
            "skipped_invalid_unicode",
            skipped,
            "skipped, holding lone surrogates (a JSON \\ud800-style escape; ingest "
            "quarantines them as invalid_unicode)",
        ),
        ("not_analysed", failed, "could not be analysed (the pii stage withholds their text)"),
    ):
        if locators:
            entries[key] = {"count": len(locators), "first": locators[:SHOWN_SKIPPED]}
            typer.echo(f"{len(locators)} text(s) {why}, first: {for_terminal(locators[0])}", err=True)
    return entries


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option(exists=True, help="presidio-research JSON: [{full_text, spans}]")],
    config: Annotated[Path | None, typer.Option(help="YAML with the pii stage's settings")] = None,
    half: Annotated[
        str, typer.Option(help="all, tune or report (records split by template, see docs)")
    ] = "all",
    anchor: Annotated[bool, typer.Option(help="also score Presidio's default AnalyzerEngine")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="evaluate the first N records of the half")] = None,
    show_misses: Annotated[int, typer.Option("--misses", help="worst misses to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Precision, recall and F1 per entity type for exact and overlapping spans, and the worst misses."""
    from pii.evaluate import HALVES, EvalDataError, default_predictor, load_samples, ours_predictor, split

    if half not in HALVES:
        raise typer.BadParameter(f"--half must be one of {', '.join(HALVES)}")
    settings = load_settings(config)
    try:
        records = split(load_samples(data), half)[:limit]
    except EvalDataError as exc:
        raise typer.BadParameter(str(exc)) from None
    systems = {"ours": ours_predictor(settings)}
    if anchor:
        systems["presidio_default"] = default_predictor(settings)
    report = evaluation_report(records, settings, systems, show_misses)
    report = {"data": str(data), "half": half, **report}
    typer.echo(json.dumps(report, indent=2) if as_json else render_eval(report))


def evaluation_report(records: list, settings: PiiSettings, systems: dict, show_misses: int) -> dict:
    """Scores of each system for both match modes, and ours' worst misses."""
    from pii.evaluate import misses, score

    entities = settings.all_entities()
    out: dict = {"documents": len(records), "scores": {}}
    texts = [r["full_text"] for r in records]
    for name, predictor in systems.items():
        predictions = predictor(texts)
        out["scores"][name] = {m: score(records, predictions, entities, m) for m in MATCHES}
        if name == "ours":
            out["misses"] = misses(records, predictions, entities)[:show_misses]
    return out


def render_eval(report: dict) -> str:
    """Tables per match mode (systems side by side) and the misses, corpus text escaped for the terminal."""
    lines = [f"{for_terminal(report['data'])} ({report['half']}): {report['documents']} records"]
    systems = list(report["scores"])
    for match in MATCHES:
        lines += ["", f"{match + ' spans':<15}" + "".join(f" | {name:^26}" for name in systems)]
        lines.append(f"{'type':<15}" + " | precision recall     f1" * len(systems))
        types = [*report["scores"][systems[0]][match]["per_type"], "overall"]
        for etype in types:
            cells = []
            for name in systems:
                scores = report["scores"][name][match]
                row = scores["overall"] if etype == "overall" else scores["per_type"][etype]
                if row["tp"] + row["fp"] + row["fn"] == 0:
                    cells.append(f" | {'-':>9} {'-':>6} {'-':>6}")  # neither labelled nor found
                else:
                    cells.append(f" | {row['precision']:>9.3f} {row['recall']:>6.3f} {row['f1']:>6.3f}")
            lines.append(f"{etype:<15}" + "".join(cells))
    if report.get("misses"):
        lines += ["", "worst misses (nothing of the value was found):"]
        for m in report["misses"]:
            shown = f"{m['before']}[[{m['value']}]]{m['after']}"
            lines.append(f"  {m['entity_type']:<14} #{m['record']:<5} {for_terminal(shown, max_chars=140)}")
    return "\n".join(lines)


def purge_raw_command(
    lake: Annotated[str, typer.Option(help="lake root: a folder or a URL such as s3://bucket/lake")],
    dataset: Annotated[str, typer.Option(help="dataset name inside the lake")],
    raw: Annotated[str, typer.Option(help="raw table to purge")] = "documents",
    curated: Annotated[str, typer.Option(help="curated table whose lineage is kept")] = "curated",
    yes: Annotated[bool, typer.Option("--yes", help="really delete (otherwise only list)")] = False,
) -> None:
    """Delete raw-table versions (unredacted PII) that the curated table's lineage does not need."""
    from pii.purge import PurgeError, purge_raw
    from pipelines.framework.lake import Lake

    try:
        plan = purge_raw(Lake(lake), f"{dataset}/{raw}", f"{dataset}/{curated}", yes=yes)
    except PurgeError as exc:
        typer.echo(f"purge-raw: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(plan.as_dict(), indent=2))
    if not yes and plan.files:
        typer.echo(
            f"dry run: {len(plan.files)} files would be deleted; rerun with --yes to delete them", err=True
        )


app.command("purge-raw")(purge_raw_command)
