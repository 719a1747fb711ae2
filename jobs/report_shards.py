"""The shard part of a run report: the shard sets a run wrote, from their manifests and `.docs.parquet`.

Read through the I/O layer (pipelines.framework.storage), so a shard set on object storage reports
like one on local disk. The per-source and per-language mix is summed file by file with pyarrow on
the driver rather than in Spark: Spark reads no lake path itself (it has no object-store connector,
docs/cluster.md), and four narrow columns of one `.docs.parquet` at a time keep the memory bounded.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.framework.runrecord import RunRecord
from pipelines.framework.storage import Location

MANIFEST_NAME = "manifest.json"
DOCS_SUFFIX = ".docs.parquet"
MIX_COLUMNS = ["source", "lang", "token_start", "token_end"]


def run_manifests(lake_root: str | os.PathLike[str] | Location, record: RunRecord) -> list[Location]:
    """Shard manifests this run wrote: named in its stages' files, or under <lake>/shards carrying its id."""
    found = {
        Location.parse(f).url: Location.parse(f)
        for s in record.stages
        for f in s.files
        if f.rstrip("/").rsplit("/", 1)[-1] == MANIFEST_NAME
    }
    for entry in (Location.parse(lake_root) / "shards").glob(f"*/{MANIFEST_NAME}"):
        try:
            if json.loads(entry.location.read_text()).get("run_id") == record.run_id:
                found[entry.location.url] = entry.location
        except (OSError, ValueError):
            continue
    return [found[url] for url in sorted(found) if found[url].is_file()]


def _mix(docs: list[Location]) -> list[dict[str, Any]]:
    """Documents and tokens per (source, language), largest first, summed one docs file at a time."""
    documents: Counter[tuple[str, str]] = Counter()
    tokens: Counter[tuple[str, str]] = Counter()
    for location in docs:
        with location.open_random() as handle:
            table = pq.read_table(handle, columns=MIX_COLUMNS)
        table = table.append_column("tokens", pc.subtract(table["token_end"], table["token_start"]))
        grouped = table.group_by(["source", "lang"]).aggregate([([], "count_all"), ("tokens", "sum")])
        for row in grouped.to_pylist():
            key = (row["source"], row["lang"])
            documents[key] += int(row["count_all"])
            tokens[key] += int(row["tokens_sum"] or 0)
    order = sorted(documents, key=lambda k: (-tokens[k], str(k[0]), str(k[1])))
    return [
        {"source": s, "lang": lang, "documents": documents[(s, lang)], "tokens": tokens[(s, lang)]}
        for s, lang in order
    ]


def shard_report(manifest_path: Location) -> dict[str, Any]:
    """Tokens and documents per shard (manifest) and per source and language (`.docs.parquet`)."""
    manifest = json.loads(manifest_path.read_text())
    folder = manifest_path.parent
    shards = [
        {"name": s["name"], "split": s["split"], "tokens": s["tokens"], "documents": s["documents"]}
        for s in manifest.get("shards", [])
    ]
    docs = [folder / f"{s['name']}{DOCS_SUFFIX}" for s in shards]
    keep = (
        "source_table",
        "source_version",
        "vocab_size",
        "dtype",
        "total_tokens",
        "total_documents",
        "splits",
        "mixture_weights",
    )
    return {
        "path": manifest_path.url,
        **{k: manifest.get(k) for k in keep},
        "shards": shards,
        "mix": _mix([d for d in docs if d.is_file()]),
    }


def with_shard_tokens(
    funnel: list[dict[str, Any]], record: RunRecord, shards: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A stage that wrote shards (no table) gets its documents and tokens out from their manifests."""
    by_path = {Location.parse(s["path"]).url: s for s in shards}
    for entry, stage in zip(funnel, record.stages, strict=True):
        written = [by_path[p] for p in (Location.parse(f).url for f in stage.files) if p in by_path]
        if written and not entry["out"]:
            docs = sum(s["total_documents"] or 0 for s in written)
            tokens = sum(s["total_tokens"] or 0 for s in written)
            entry["out"] = {"docs": docs, "kept_docs": docs, "tokens": tokens, "kept_tokens": tokens}
    return funnel
