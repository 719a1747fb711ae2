"""`refinery pii ...`: scan files for PII, evaluate detection on labelled data, purge raw table versions.

Nothing printed here contains a detected value: scan shows each finding inside
its redacted context. Evaluation prints scores and the missed gold spans of the labelled file
(its own test data, escaped for the terminal).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
import yaml
from pydantic import ValidationError

from pii.scan_input import Item, UnreadableFile, iter_items
from pii.settings import PiiSettings
from pipelines.framework.terminal_text import for_terminal
from pipelines.framework.unicode_text import has_lone_surrogates
from pipelines.framework.validation import field_problems

if TYPE_CHECKING:
    from pipelines.framework.lake import Lake

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


@dataclass
class _Scan:
    """A scan's running counts: texts go to the kernel SCAN_BATCH at a time; texts it set aside are
    kept by report key, each with its locator (and why)."""

    settings: PiiSettings
    show: int
    documents: int = 0
    with_pii: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    findings: list[dict] = field(default_factory=list)
    batch: list[tuple[str, str]] = field(default_factory=list)
    aside: dict[str, list[str]] = field(default_factory=lambda: {key: [] for key, _ in SET_ASIDE})

    def add(self, item: Item) -> None:
        if item.text is None:
            key = "unreadable_files" if item.whole_file else "skipped_no_text"
            self.aside[key].append(item.problem if item.whole_file else f"{item.locator}: {item.problem}")
        elif has_lone_surrogates(item.text):
            self.aside["skipped_invalid_unicode"].append(item.locator)
        else:
            self.batch.append((item.locator, item.text))
            self.documents += 1
            if len(self.batch) >= SCAN_BATCH:
                self.flush()

    def flush(self) -> None:
        from pii.kernel import FAILED, redact_texts

        texts = [t for _, t in self.batch]
        for (locator, _), red in zip(self.batch, redact_texts(texts, self.settings), strict=True):
            if red["scope"] == FAILED:
                self.aside["not_analysed"].append(locator)
                continue
            self.with_pii += bool(red["spans"])
            self.counts.update(red["counts"])
            for span in red["spans"]:
                if len(self.findings) < self.show:
                    lo, hi = max(0, span["start"] - CONTEXT_CHARS), span["end"] + CONTEXT_CHARS
                    self.findings.append({"doc": locator, **span, "context": red["text"][lo:hi]})
        self.batch.clear()


@app.command()
def scan(
    path: Annotated[Path, typer.Argument(exists=True, help="file, folder or Delta table folder")],
    config: Annotated[Path | None, typer.Option(help="YAML with the pii stage's settings")] = None,
    ner: Annotated[bool | None, typer.Option("--ner/--no-ner", help="override the config's ner")] = None,
    limit: Annotated[int, typer.Option(help="documents to scan at most")] = 10_000,
    show: Annotated[int, typer.Option(help="findings to list (in redacted context)")] = 20,
) -> None:
    """What would be redacted: counts by type and findings shown inside their redacted context.

    Records with no string text, and files of a folder that cannot be read whole, are
    skipped, counted and named (a file named here that cannot be read is an error, exit 2).
    """
    from pii.engine import ner_decoder_used

    run = _Scan(load_settings(config, ner), show)
    try:
        for item in iter_items(path):
            if run.documents >= limit:
                break
            run.add(item)
    except UnreadableFile as exc:  # the file named on the command line; nothing was scanned
        _usage_error(str(exc))
    run.flush()
    report = {
        "documents": run.documents,
        "documents_with_pii": run.with_pii,
        "counts": dict(run.counts.most_common()),
        "ner_decoder": ner_decoder_used(run.settings),
    }
    report.update(_set_aside(run.aside))
    # ASCII JSON: lossless, and no C1 or bidi control from a finding reaches the terminal raw.
    typer.echo(json.dumps({**report, "findings": run.findings}, indent=2))


# Report keys of texts a scan did not count, and what stderr says of them.
SET_ASIDE = (
    (
        "skipped_invalid_unicode",
        "text(s) skipped, holding lone surrogates (a JSON \\ud800-style escape; ingest "
        "quarantines them as invalid_unicode)",
    ),
    ("skipped_no_text", "record(s) skipped, with no text to scan (no string `text`, or an empty one)"),
    ("unreadable_files", "file(s) of the folder skipped whole, not readable as text, JSON or JSON Lines"),
    ("not_analysed", "text(s) could not be analysed (the pii stage withholds their text)"),
)


def _set_aside(aside: dict[str, list[str]]) -> dict:
    """The report's entries for texts the scan did not count, each said on stderr too."""
    entries = {}
    for key, why in SET_ASIDE:
        locators = aside[key]
        if locators:
            entries[key] = {"count": len(locators), "first": locators[:SHOWN_SKIPPED]}
            typer.echo(f"{len(locators)} {why}, first: {for_terminal(locators[0])}", err=True)
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

    lake_root, raw_table, curated_table = _purge_tables(lake, dataset, raw, curated)
    try:
        plan = purge_raw(lake_root, raw_table, curated_table, yes=yes)
    except PurgeError as exc:
        typer.echo(f"purge-raw: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(plan.as_dict(), indent=2))
    if not yes and plan.files:
        typer.echo(
            f"dry run: {len(plan.files)} files would be deleted; rerun with --yes to delete them", err=True
        )


def _purge_tables(lake: str, dataset: str, raw: str, curated: str) -> tuple[Lake, str, str]:
    """The lake and the two table names, or a one-line error (exit 2) for a name that is empty or
    leaves the lake (`../outside`), rather than the lake's ValueError traceback."""
    from pipelines.framework.cli_options import lake_root
    from pipelines.framework.lake import Lake

    for option, value in (("--lake", lake), ("--dataset", dataset), ("--raw", raw), ("--curated", curated)):
        if not value.strip(" /"):
            _usage_error(f"{option} is empty; it names a {option[2:]}")
    lake_root(lake)  # a URL wrong as written (a query, `..`) is refused before any table is read
    try:
        root = Lake(lake)
        tables = f"{dataset.strip('/')}/{raw.strip('/')}", f"{dataset.strip('/')}/{curated.strip('/')}"
        for table in tables:
            root.path(table)  # refuses a name that escapes the lake or names its root
    except ValueError as exc:
        _usage_error(str(exc))
    return root, *tables


def _usage_error(message: str) -> NoReturn:
    typer.echo(f"error: {for_terminal(message)}", err=True)
    raise typer.Exit(2)


app.command("purge-raw")(purge_raw_command)
