"""Run reports: the funnel, timings, thresholds, tables and shards of one run, as JSON beside its record.

`build_run_report` reads the run record (`<lake>/_runs/<run_id>/run.json`), computes
a table report (`jobs.report_table`) for every table version the run read or
wrote, and derives the funnel from them: documents, characters and tokens into and
out of each stage, and what each stage newly dropped per reason (reasons are never
cleared, so a stage's own drops are its output's counts less its input's), with
the one line each reason means (`jobs.reasons`). Shard sets come from their
manifests and `.docs.parquet` files. The result is written to
`<lake>/_runs/<run_id>/report.json`, which the web app and the static HTML report
read; they never start Spark themselves.
"""

from __future__ import annotations

import json
from typing import Any

from jobs.reasons import reason_descriptions
from jobs.report_languages import run_languages
from jobs.report_shards import run_manifests, shard_report, with_shard_tokens
from jobs.report_table import Threshold, table_report
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.lake import Lake, TableMissingError, without_backtrace
from pipelines.framework.runrecord import LakeRoot, RunRecord
from pipelines.framework.storage import Location

REPORT_NAME = "report.json"
REPORT_VERSION = 1
OPS = {"min": "lt", "max": "gt"}


def report_path(lake_root: LakeRoot, run_id: str) -> Location:
    return Location.parse(RunRecord.directory(lake_root, run_id)) / REPORT_NAME


class ReportUnreadable(ValueError):
    """A stored report.json that is not a report: damaged, cut short, or written by another version."""


def load_run_report(lake_root: LakeRoot, run_id: str) -> dict[str, Any] | None:
    """The stored report of a run, or None when it has not been computed.

    A stored file that cannot be read raises ReportUnreadable rather than passing for "not computed":
    a damaged lake is something its owner must hear about, not have papered over by a recompute.
    """
    try:
        return read_report(report_path(lake_root, run_id), run_id)
    except FileNotFoundError:
        return None


def read_report(path: Location, run_id: str) -> dict[str, Any]:
    """The report stored at `path`: FileNotFoundError when absent, ReportUnreadable when not a report."""
    try:
        report = path.read_parsed(json.loads)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise ReportUnreadable(_unreadable(path, run_id, str(exc) or type(exc).__name__)) from None
    if not isinstance(report, dict):
        raise ReportUnreadable(_unreadable(path, run_id, f"a JSON {type(report).__name__}, not an object"))
    if report.get("report_version") != REPORT_VERSION:
        found = report.get("report_version")
        raise ReportUnreadable(
            _unreadable(path, run_id, f"report_version {found!r}, expected {REPORT_VERSION}")
        )
    return report


def _unreadable(path: Location, run_id: str, why: str) -> str:
    return (
        f"the stored report {path} cannot be read ({why}); "
        f"`refinery report {run_id} --recompute` computes it again"
    )


def _preset_thresholds(config: dict[str, Any], stage: str) -> list[Threshold]:
    """Rules of a decide-style config (`presets` + optional per-reason `thresholds` overrides)."""
    presets = config.get("presets")
    if not isinstance(presets, list):
        return []
    try:
        from curation.annotators import preset_rules
    except ImportError:
        return []
    overrides = config.get("thresholds") if isinstance(config.get("thresholds"), dict) else None
    try:
        rules = preset_rules(presets, overrides)
    except ValueError:
        return []
    return [
        Threshold(r.column, r.op, float(r.value), r.reason, stage)
        for r in rules
        if r.op in ("lt", "gt", "le", "ge", "eq") and isinstance(r.value, (int, float))
    ]


def stage_thresholds(config: dict[str, Any], stage: str, columns: set[str]) -> list[Threshold]:
    """Thresholds a stage config declares over known columns.

    Two conventions are recognised: `min_<column>` / `max_<column>` (or
    `<column>_min` / `<column>_max`) keys, and decide-style `presets` resolved
    through `curation.rules`. Anything else in the config is not a threshold.
    """
    found = _preset_thresholds(config, stage)
    for key, value in config.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        for bound, op in OPS.items():
            for column in (key.removeprefix(f"{bound}_"), key.removesuffix(f"_{bound}")):
                if column != key and column in columns:
                    found.append(Threshold(column, op, float(value), f"{key}={value}", stage))
    return found


def _thresholds(record: RunRecord, columns: set[str]) -> dict[str, list[Threshold]]:
    by_column: dict[str, list[Threshold]] = {}
    for s in record.stages:
        for t in stage_thresholds(s.config, s.id, columns):
            by_column.setdefault(t.column, []).append(t)
    return by_column


def _run_tables(record: RunRecord) -> list[tuple[str, int]]:
    """Every (table, version) the run's stages pinned as input or produced, in stage order."""
    seen: dict[tuple[str, int], None] = {}
    for s in record.stages:
        for name, version in [*s.inputs.items(), *s.outputs.items()]:
            seen[(f"{record.dataset}/{name}", int(version))] = None
    return list(seen)


def table_key(table: str, version: int) -> str:
    return f"{table}@{version}"


def _side(report: dict[str, Any] | None) -> dict[str, int | None]:
    """Documents, characters and tokens of a table version: all rows, and kept rows."""
    if report is None:
        return {}
    t = report["totals"]
    return {
        "docs": t["docs"],
        "kept_docs": t["kept"],
        "chars": t.get("chars"),
        "kept_chars": t.get("kept_chars"),
        "tokens": t.get("tokens"),
        "kept_tokens": t.get("kept_tokens"),
    }


def _reasons(report: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    if not report or DROP_REASON not in report["breakdowns"]:
        return {}
    return {
        v["value"]: {k: v.get(k, 0) for k in ("docs", "chars", "tokens")}
        for v in report["breakdowns"][DROP_REASON]["values"]
        if v["value"] is not None
    }


def _funnel(record: RunRecord, tables: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stage: in/out documents, characters, tokens, newly dropped per reason, and throughput."""
    funnel = []
    for s in record.stages:
        first_in = next(iter(s.inputs.items()), None)
        first_out = next(iter(s.outputs.items()), None)
        rin = tables.get(table_key(f"{record.dataset}/{first_in[0]}", first_in[1])) if first_in else None
        rout = tables.get(table_key(f"{record.dataset}/{first_out[0]}", first_out[1])) if first_out else None
        before, after = _reasons(rin), _reasons(rout)
        dropped = {
            reason: {k: n - before.get(reason, {}).get(k, 0) for k, n in counts.items()}
            for reason, counts in after.items()
        }
        dropped = {r: c for r, c in dropped.items() if c["docs"] > 0}
        entry = {
            **s.summary(),
            "reconciled": s.reconciled,
            "input": table_key(f"{record.dataset}/{first_in[0]}", first_in[1]) if first_in else None,
            "output": table_key(f"{record.dataset}/{first_out[0]}", first_out[1]) if first_out else None,
            "in": _side(rin),
            "out": _side(rout),
            "dropped": dropped,
        }
        rows = s.rows_in if s.rows_in is not None else sum(s.rows_out.values()) or None
        if s.seconds and s.status == "succeeded" and rows:
            entry["docs_per_second"] = rows / s.seconds
            chars = (_side(rin) or _side(rout)).get("chars")
            entry["chars_per_second"] = chars / s.seconds if chars else None
        funnel.append(entry)
    return funnel


def build_run_report(spark: Any, lake_root: LakeRoot, run_id: str) -> dict[str, Any]:
    """Compute the whole report of one run (Spark aggregations only; see the module docstring)."""
    lake = Lake(lake_root)
    record = RunRecord.load(lake.root, run_id)
    schemas, unreadable = _schemas(lake, [(t, v) for t, v in _run_tables(record) if lake.exists(t)])
    pinned = list(schemas)
    columns = {n for schema in schemas.values() for n in schema.names}
    thresholds = _thresholds(record, columns)
    tables = {table_key(t, v): table_report(spark, lake, t, v, thresholds) for t, v in pinned}
    shards = [shard_report(p) for p in run_manifests(lake.root, record)]
    funnel = with_shard_tokens(_funnel(record, tables), record, shards)
    return {
        "report_version": REPORT_VERSION,
        "run_id": record.run_id,
        "job": record.job,
        "dataset": record.dataset,
        "status": record.status,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "code_version": record.code_version,
        "error": record.error,
        "error_cause": record.error_cause,
        "funnel": funnel,
        "languages": run_languages(funnel, tables),
        "reasons": reason_descriptions(record, [r for t in tables.values() for r in _reasons(t)]),
        "thresholds": {c: [t.as_json() for t in ts] for c, ts in thresholds.items()},
        "tables": tables,
        "unreadable": unreadable,
        "shards": shards,
    }


def _schemas(lake: Lake, pinned: list[tuple[str, int]]) -> tuple[dict[tuple[str, int], Any], dict[str, str]]:
    """The schema of each table version whose log can be read, and for each other one why not.

    One damaged table (a commit file that is not JSON) used to end the whole report in a traceback
    that called the version missing; the report of the run's other tables is still worth having.
    """
    schemas, unreadable = {}, {}
    for table, version in pinned:
        try:
            schemas[(table, version)] = lake.arrow_schema(table, version)
        except TableMissingError as exc:
            unreadable[table_key(table, version)] = _unreadable_version(lake, table, version, exc)
    return schemas, unreadable


def _unreadable_version(lake: Lake, table: str, version: int, cause: TableMissingError) -> str:
    """Damaged or gone: a version in the log that cannot be read is damaged (naming the damaged commit
    file where the log says which), one no longer in the log was cleaned up."""
    try:
        versions = {int(commit["version"]) for commit in lake.history(table)}
    except TableMissingError as exc:  # the damaged commit file, named by the log reader
        return str(exc)
    if version not in versions:
        return f"table {table!r} no longer has version {version} (its log was cleaned up since the run)"
    why = without_backtrace(cause.__cause__ or cause)
    return (
        f"table {table!r} has version {version} but it cannot be read, its files are damaged: {why}; "
        "restore the table's folder, or rebuild it by rerunning its stage"
    )


def write_run_report(spark: Any, lake_root: LakeRoot, run_id: str) -> Location:
    """Compute a run's report and store it atomically as report.json beside run.json."""
    report = build_run_report(spark, lake_root, run_id)
    path = report_path(Lake(lake_root).root, run_id)
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
