"""Report data for one table version: Spark aggregations over a pinned Delta snapshot.

Why this shape: the report must work for whatever stages a run had, so nothing
here names a stage. Columns are detected by name and type (`drop_reason`, `lang`,
`source`, `pii_counts`, every numeric column as a signal, ...) and each section
exists only when its columns do. Every number comes from a Spark aggregation;
only the aggregates (a few hundred rows at most) reach the driver, never a row of
the table. Text and image bytes are reduced to their lengths before anything
else, so the cached projection stays small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from jobs.report_languages import language_section
from pipelines.framework.drop_reason import DROP_REASON

HIST_BINS = 30
TOP_VALUES = 40
EXAMPLE_GROUPS = 12
LOG_SPAN = 1000.0  # a non-negative column whose max/min spans more than this gets log-spaced bins
TOKEN_COLUMNS = ("token_count", "n_tokens", "num_tokens", "tokens")
ID_COLUMNS = ("doc_id", "image_id", "id")
# Categorical columns broken down when present, in display order.
CATEGORICAL = (DROP_REASON, "lang", "source", "reason", "stage", "format", "pii_scope", "content_type")
# Numeric columns that are identifiers or offsets, not signals.
NOT_SIGNALS = frozenset({"dup_cluster", "dup_of", "token_start", "token_end", "fetched_at"})
# Columns whose equal values form duplicate groups.
GROUP_COLUMNS = ("dup_cluster", "sha256", "phash")
CHARS = "_chars"
BYTES = "_bytes"
KEPT = "_kept"
LABELS = {CHARS: "text length (characters)", BYTES: "image size (bytes)"}


@dataclass(frozen=True)
class Threshold:
    """A rule over a column, as a stage config declared it: documents fail when `column <op> value`."""

    column: str
    op: str
    value: float
    reason: str
    stage: str

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "value": self.value, "reason": self.reason, "stage": self.stage}


@dataclass
class Columns:
    """What a table holds, detected from its schema: the report's sections follow from it."""

    names: list[str]
    text: bool
    binary: bool
    drop_reason: bool
    tokens: str | None
    ident: str | None
    numeric: list[str]
    boolean: list[str]
    categorical: list[str]
    lists: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    @classmethod
    def detect(cls, schema: pa.Schema) -> Columns:
        names = schema.names
        types = {f.name: f.type for f in schema}
        numeric = [
            n
            for n in names
            if (pa.types.is_integer(types[n]) or pa.types.is_floating(types[n])) and n not in NOT_SIGNALS
        ]
        return cls(
            names=names,
            text=pa.types.is_string(types.get("text", pa.null()))
            or pa.types.is_large_string(types.get("text", pa.null())),
            binary=pa.types.is_binary(types.get("bytes", pa.null())),
            drop_reason=DROP_REASON in names,
            tokens=next((n for n in TOKEN_COLUMNS if n in numeric), None),
            ident=next((n for n in ID_COLUMNS if n in names), None),
            numeric=numeric,
            boolean=[n for n in names if pa.types.is_boolean(types[n])],
            categorical=[n for n in CATEGORICAL if n in names and pa.types.is_string(types[n])],
            lists=[n for n in ("drop_reasons",) if n in names and pa.types.is_list(types[n])],
            groups=[n for n in GROUP_COLUMNS if n in names],
        )


def _finite(value: Any) -> Any:
    """JSON-safe number: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _projection(df: Any, cols: Columns) -> Any:
    """Only what the aggregations need: text and bytes become lengths, plus a kept flag."""
    from pyspark.sql import functions as F

    exprs = [(F.col(DROP_REASON).isNull() if cols.drop_reason else F.lit(True)).alias(KEPT)]
    if cols.text:
        exprs.append(F.length("text").cast("long").alias(CHARS))
    if cols.binary:
        exprs.append(F.length("bytes").cast("long").alias(BYTES))
    wanted = [*cols.numeric, *cols.boolean, *cols.categorical, *cols.lists, *cols.groups]
    if cols.ident:
        wanted.append(cols.ident)
    wanted += [n for n in ("pii_counts", "pii_spans", "lang_score") if n in cols.names]
    exprs += [F.col(n) for n in dict.fromkeys(wanted) if n != DROP_REASON]
    if cols.drop_reason:
        exprs.append(F.col(DROP_REASON))
    return df.select(*exprs)


def _sum_or_zero(column: Any) -> Any:
    from pyspark.sql import functions as F

    return F.coalesce(F.sum(column), F.lit(0)).cast("long")


def _measures(cols: Columns, proj_cols: list[str]) -> list[Any]:
    """Documents, kept documents, characters and tokens (all, and kept only) as aggregate columns."""
    from pyspark.sql import functions as F

    out = [F.count(F.lit(1)).alias("docs"), _sum_or_zero(F.col(KEPT).cast("long")).alias("kept")]
    for name, alias in ((CHARS, "chars"), (cols.tokens, "tokens"), (BYTES, "bytes")):
        if name and name in proj_cols:
            out.append(_sum_or_zero(F.col(name)).alias(alias))
            out.append(_sum_or_zero(F.when(F.col(KEPT), F.col(name))).alias(f"kept_{alias}"))
    return out


def _breakdowns(proj: Any, cols: Columns, totals: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Counts per value of every categorical column in one grouped aggregation (their values are few:
    reasons, languages, sources, formats); the top values are kept, the rest summed as `other`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not cols.categorical:
        return {}
    pairs = F.array(*[F.struct(F.lit(c).alias("k"), F.col(c).alias("v")) for c in cols.categorical])
    extra = [F.avg("lang_score").alias("mean_lang_score")] if "lang_score" in proj.columns else []
    grouped = (
        proj.select("*", F.explode(pairs).alias("p"))
        .groupBy("p.k", "p.v")
        .agg(*_measures(cols, proj.columns), *extra)
    )
    rank = F.row_number().over(Window.partitionBy("k").orderBy(F.desc("docs"), F.asc("v")))
    rows = grouped.withColumn("rank", rank).where(F.col("rank") <= TOP_VALUES).orderBy("k", "rank").collect()
    out = {c: {"column": c, "values": [], "other": None} for c in cols.categorical}
    for r in rows:
        d = r.asDict()
        column, value = d.pop("k"), d.pop("v")
        d.pop("rank")
        mean = d.pop("mean_lang_score", None)
        entry = {"value": value, **{k: int(v) for k, v in d.items() if v is not None}}
        if column == "lang" and mean is not None:
            entry["mean_lang_score"] = _finite(float(mean))
        out[column]["values"].append(entry)
    for b in out.values():
        other = {k: totals[k] - sum(v.get(k, 0) for v in b["values"]) for k in totals}
        b["other"] = other if other.get("docs") else None
    return out


def _list_counts(proj: Any, column: str) -> dict[str, Any]:
    """How often each element of a list column appears (e.g. every reason a document failed)."""
    from pyspark.sql import functions as F

    rows = (
        proj.select(F.explode(column).alias("v"), KEPT)
        .groupBy("v")
        .agg(F.count(F.lit(1)).alias("docs"))
        .orderBy(F.desc("docs"))
        .limit(TOP_VALUES)
        .collect()
    )
    return {"column": column, "values": [{"value": r["v"], "docs": int(r["docs"])} for r in rows]}


def _stat_aggs(names: list[str]) -> list[Any]:
    """Min, max, mean, non-null count and deciles of each numeric column (NaN counts as null)."""
    from pyspark.sql import functions as F

    aggs = []
    for i, n in enumerate(names):
        valid = F.when(~F.isnan(F.col(n).cast("double")), F.col(n).cast("double"))
        aggs += [
            F.min(valid).alias(f"lo{i}"),
            F.max(valid).alias(f"hi{i}"),
            F.avg(valid).alias(f"mean{i}"),
            F.count(valid).alias(f"n{i}"),
            F.percentile_approx(valid, [0.1, 0.5, 0.9], 1000).alias(f"q{i}"),
        ]
    return aggs


def _hist_spec(row: Any, i: int, name: str, integer: bool) -> dict[str, Any]:
    """Summary statistics and bin edges of column `name` from the global aggregate row."""
    lo, hi = row[f"lo{i}"], row[f"hi{i}"]
    spec: dict[str, Any] = {
        "column": name,
        "count": int(row[f"n{i}"]),
        "min": _finite(lo),
        "max": _finite(hi),
    }
    spec["mean"] = _finite(row[f"mean{i}"])
    quantiles = row[f"q{i}"] or [None, None, None]
    spec["quantiles"] = dict(zip(("p10", "p50", "p90"), (_finite(q) for q in quantiles), strict=True))
    if lo is None or hi is None:
        spec.update(scale="empty", edges=[])
    elif integer and hi - lo < HIST_BINS:
        spec.update(scale="unit", edges=[lo + k for k in range(int(hi - lo) + 2)])
    elif lo >= 0 and hi > LOG_SPAN * max(lo, 1.0):
        tlo, thi = math.log10(lo + 1), math.log10(hi + 1)
        spec.update(
            scale="log", edges=[10 ** (tlo + (thi - tlo) * k / HIST_BINS) - 1 for k in range(HIST_BINS + 1)]
        )
    elif hi == lo:
        spec.update(scale="unit", edges=[lo, lo + 1])
    else:
        spec.update(scale="linear", edges=[lo + (hi - lo) * k / HIST_BINS for k in range(HIST_BINS + 1)])
    return spec


def _bucket(spec: dict[str, Any]) -> Any:
    """The Spark expression giving a value's bin index under `spec` (null for nulls and NaN)."""
    from pyspark.sql import functions as F

    col = F.col(spec["column"]).cast("double")
    col = F.when(~F.isnan(col), col)
    edges, bins = spec["edges"], len(spec["edges"]) - 1
    lo, hi = edges[0], edges[-1]
    if spec["scale"] == "unit":
        position = col - F.lit(lo)
    elif spec["scale"] == "log":
        tlo, thi = math.log10(lo + 1), math.log10(hi + 1)
        position = (F.log10(col + F.lit(1.0)) - F.lit(tlo)) / F.lit(thi - tlo) * F.lit(bins)
    else:
        position = (col - F.lit(lo)) / F.lit(hi - lo) * F.lit(bins)
    return F.greatest(F.least(F.floor(position).cast("int"), F.lit(bins - 1)), F.lit(0))


def _histograms(
    proj: Any, specs: list[dict[str, Any]], thresholds: dict[str, list[Threshold]]
) -> list[dict[str, Any]]:
    """Kept and dropped counts per bin for every numeric column, all in one grouped aggregation."""
    from pyspark.sql import functions as F

    binned = [s for s in specs if s["edges"]]
    counts: dict[tuple[int, int, bool], int] = {}
    if binned:
        pairs = F.array(*[F.struct(F.lit(i).alias("k"), _bucket(s).alias("b")) for i, s in enumerate(binned)])
        rows = (
            proj.select(F.col(KEPT), F.explode(pairs).alias("h"))
            .where(F.col("h.b").isNotNull())
            .groupBy("h.k", "h.b", KEPT)
            .count()
            .collect()
        )
        counts = {(int(r["k"]), int(r["b"]), bool(r[KEPT])): int(r["count"]) for r in rows}
    for i, spec in enumerate(binned):
        bins = len(spec["edges"]) - 1
        spec["kept"] = [counts.get((i, b, True), 0) for b in range(bins)]
        spec["dropped"] = [counts.get((i, b, False), 0) for b in range(bins)]
    for spec in specs:
        spec["thresholds"] = [t.as_json() for t in thresholds.get(spec["column"], [])]
        spec["label"] = LABELS.get(spec["column"], spec["column"])
    return specs


def _groups(proj: Any, column: str, ident: str | None) -> dict[str, Any]:
    """Duplicate groups by equal `column` values: size distribution and the largest groups with two members."""
    from pyspark.sql import functions as F

    member = F.col(ident) if ident else F.lit(None)
    grouped = (
        proj.where(F.col(column).isNotNull())
        .groupBy(column)
        .agg(F.count(F.lit(1)).alias("size"), F.min(member).alias("first"), F.max(member).alias("last"))
        .persist()
    )
    sizes = grouped.groupBy("size").agg(F.count(F.lit(1)).alias("groups")).orderBy("size").collect()
    largest = grouped.where("size > 1").orderBy(F.desc("size"), F.asc(column)).limit(EXAMPLE_GROUPS).collect()
    grouped.unpersist()
    distribution = [{"size": int(r["size"]), "groups": int(r["groups"])} for r in sizes]
    return {
        "column": column,
        "sizes": distribution,
        "groups": sum(d["groups"] for d in distribution if d["size"] > 1),
        "members": sum(d["size"] * d["groups"] for d in distribution if d["size"] > 1),
        "largest": [
            {
                "key": str(r[column]),
                "size": int(r["size"]),
                "examples": [r["first"], r["last"]] if ident else [],
            }
            for r in largest
        ],
    }


def _pii_documents(proj: Any) -> Any:
    """Aggregate: documents with at least one PII entity (None when the table has no PII columns)."""
    from pyspark.sql import functions as F

    if "pii_counts" in proj.columns:
        flag = F.exists(F.map_values("pii_counts"), lambda v: v > 0)
    elif "pii_spans" in proj.columns:
        flag = F.size("pii_spans") > 0
    else:
        return None
    return _sum_or_zero(F.coalesce(flag, F.lit(False)).cast("long")).alias("pii_docs")


def _pii_entities(proj: Any) -> list[dict[str, Any]]:
    """Entities per type, from `pii_counts` (else counted from `pii_spans`)."""
    from pyspark.sql import functions as F

    if "pii_counts" in proj.columns:
        entries = proj.select(F.explode("pii_counts").alias("entity", "n"))
    else:
        entries = proj.select(F.explode("pii_spans").alias("s")).select(
            F.col("s.entity_type").alias("entity"), F.lit(1).alias("n")
        )
    rows = entries.groupBy("entity").agg(_sum_or_zero("n").alias("n")).orderBy(F.desc("n")).collect()
    return [{"type": r["entity"], "count": int(r["n"])} for r in rows]


def _global(
    proj: Any, cols: Columns
) -> tuple[dict[str, int], list[dict[str, Any]], list[dict[str, Any]], int | None]:
    """Totals, numeric summaries, boolean counts and PII documents: one aggregation over the table."""
    from pyspark.sql import functions as F

    names = [n for n in (CHARS, BYTES, *cols.numeric) if n in proj.columns]
    types = dict(proj.dtypes)
    aggs = [*_measures(cols, proj.columns), *_stat_aggs(names)]
    for i, n in enumerate(cols.boolean):
        aggs += [_sum_or_zero(F.col(n).cast("long")).alias(f"t{i}"), F.count(n).alias(f"c{i}")]
    pii_docs = _pii_documents(proj)
    row = proj.agg(*aggs, *([pii_docs] if pii_docs is not None else [])).collect()[0].asDict()
    totals = {
        m: int(row[m])
        for m in ("docs", "kept", "chars", "kept_chars", "tokens", "kept_tokens", "bytes", "kept_bytes")
        if m in row
    }
    specs = [
        _hist_spec(row, i, n, types[n] in ("int", "bigint", "smallint", "tinyint"))
        for i, n in enumerate(names)
    ]
    booleans = [
        {"column": n, "true": int(row[f"t{i}"]), "false": int(row[f"c{i}"]) - int(row[f"t{i}"])}
        for i, n in enumerate(cols.boolean)
    ]
    return totals, specs, booleans, int(row["pii_docs"]) if pii_docs is not None else None


def table_report(
    spark: Any, lake: Any, table: str, version: int, thresholds: dict[str, list[Threshold]] | None = None
) -> dict[str, Any]:
    """Every section the table's columns allow, for one pinned version (see the module docstring)."""
    schema = lake.arrow_schema(table, version)
    cols = Columns.detect(schema)
    proj = _projection(lake.read(spark, table, version), cols).persist()
    try:
        totals, specs, booleans, pii_docs = _global(proj, cols)
        return {
            "table": table,
            "version": version,
            "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
            "totals": totals,
            "has_drop_reason": cols.drop_reason,
            "token_column": cols.tokens,
            "breakdowns": _breakdowns(proj, cols, totals),
            "languages": language_section(proj),
            "lists": {c: _list_counts(proj, c) for c in cols.lists},
            "histograms": _histograms(proj, specs, thresholds or {}),
            "booleans": booleans,
            "groups": {c: _groups(proj, c, cols.ident) for c in cols.groups},
            "pii": None
            if pii_docs is None
            else {"entities": _pii_entities(proj), "documents_with_pii": pii_docs},
        }
    finally:
        proj.unpersist()
