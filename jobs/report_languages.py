"""Per-language kept and dropped counts: which languages a run kept, and why it dropped the rest.

Why a section of its own: a table report's `lang` breakdown counts documents and kept
documents per language, but not why each language's documents went. The first question
about a multilingual job is whether a language was dropped for being that language
(`language`) or by a rule whose thresholds may not suit it. One grouped aggregation by
(lang, drop_reason) over the report's cached projection answers both; only those groups
(languages times reasons, a few hundred at most) reach the driver, never a row.

Why the run shows one table: reasons are never cleared, so the last table of the curation
funnel carries every drop of every stage before it. The run's section is therefore the
output of the last stage that kept its rows one to one (rows in = rows out); a stage that
adds rows (augmentation's mixture copies and noised variants) would count a document more
than once.
"""

from __future__ import annotations

from typing import Any

from pipelines.framework.drop_reason import DROP_REASON

LANG = "lang"
TOP_LANGUAGES = 40  # the rest are summed as `other`
TOP_REASONS = 3  # per language; the rest are summed as `other_reasons`


def language_section(proj: Any) -> dict[str, Any] | None:
    """Documents, kept and dropped documents, and the top drop reasons per language of one table.

    `proj` is a Spark DataFrame with `lang` and `drop_reason` columns (the table report's
    projection); None when it lacks either, as a table before language ID or decide does.
    """
    from pyspark.sql import functions as F

    if LANG not in proj.columns or DROP_REASON not in proj.columns:
        return None
    groups = proj.groupBy(LANG, DROP_REASON).agg(F.count(F.lit(1)).alias("docs")).collect()
    by_lang: dict[str | None, dict[str | None, int]] = {}
    for row in groups:
        by_lang.setdefault(row[LANG], {})[row[DROP_REASON]] = int(row["docs"])
    languages = sorted(
        (_language(lang, reasons) for lang, reasons in by_lang.items()),
        key=lambda entry: (-entry["docs"], entry["lang"] is None, entry["lang"] or ""),
    )
    shown, rest = languages[:TOP_LANGUAGES], languages[TOP_LANGUAGES:]
    return {
        "languages": shown,
        "other": _sum(rest) | {"count": len(rest)} if rest else None,
        "total": _sum(languages),
    }


def _language(lang: str | None, reasons: dict[str | None, int]) -> dict[str, Any]:
    """One language's entry: its counts, its `TOP_REASONS` drop reasons and the sum of the others."""
    kept = reasons.get(None, 0)
    dropped = sorted(((r, n) for r, n in reasons.items() if r is not None), key=lambda p: (-p[1], p[0]))
    top = dropped[:TOP_REASONS]
    return {
        "lang": lang,
        "docs": kept + sum(n for _, n in dropped),
        "kept": kept,
        "dropped": sum(n for _, n in dropped),
        "reasons": [{"reason": r, "docs": n} for r, n in top],
        "other_reasons": sum(n for _, n in dropped[TOP_REASONS:]),
    }


def _sum(entries: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(e[k] for e in entries) for k in ("docs", "kept", "dropped")}


def run_languages(funnel: list[dict[str, Any]], tables: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The languages section of the run: that of the last row-preserving stage's output (see the module
    docstring), with the table and stage it describes; None when no stage output has one."""
    chosen = None
    for stage in funnel:
        output = stage.get("output")
        section = (tables.get(output) or {}).get("languages") if output else None
        rows_in, rows_out = stage["in"].get("docs"), stage["out"].get("docs")
        if section and rows_in is not None and rows_in == rows_out:
            chosen = {"table": output, "stage": stage["id"], **section}
    return chosen
