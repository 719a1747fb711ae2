"""Order-free content hashes of a lake's tables: the check that a refactor left every row as it was.

A table's hash is the SHA-256 of its rows' sorted digests, each row a canonical JSON of its
columns by name, so neither row order (partitioning) nor column order (schema layout) counts,
while every value does. Columns that name the run itself (`RUN_COLUMNS`) differ by design
between two runs of the same job and are left out.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import deltalake

from pipelines.framework.lake import snapshot_dataset
from pipelines.framework.storage import Location

RUN_COLUMNS = frozenset({"ingest_run", "run_id"})


def _plain(value: object) -> object:
    """JSON-able form of one Arrow value: bytes as base64, maps and structs as sorted pairs."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def table_hash(path: Path | Location) -> dict[str, object]:
    """Row count and content hash of the Delta table at `path`, a folder or a URL (see the module docstring)."""
    where = Location.parse(path)
    delta = deltalake.DeltaTable(where.url, storage_options=where.delta_storage_options())
    table = snapshot_dataset(delta, where).to_table()
    keep = [name for name in table.column_names if name not in RUN_COLUMNS]
    digests = sorted(
        hashlib.sha256(json.dumps(_plain(row), sort_keys=True).encode()).hexdigest()
        for row in table.select(keep).to_pylist()
    )
    return {"rows": len(digests), "sha256": hashlib.sha256("".join(digests).encode()).hexdigest()}


def lake_hashes(job_dir: Path | Location) -> dict[str, dict[str, object]]:
    """`table_hash` of every Delta table under one job's folder of the lake, by table name."""
    return {
        child.name: table_hash(child)
        for child in Location.parse(job_dir).children()
        if (child / "_delta_log").is_dir()
    }
