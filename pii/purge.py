"""Drop raw-table versions (which hold unredacted PII) once the curated table no longer needs them.

Lineage comes from commit metadata: every stage commit records the table
versions it read (`inputs`). Walking back from the curated table's latest
version finds the raw versions it was derived from; those stay readable (so a
run can still be reproduced and audited), every other version's data files are
deleted. delta-rs's vacuum (retention 0) lists the files the latest version does
not reference; files a still-needed older version references are spared. The
Delta log is kept, so history shows what existed; reading a purged version
fails with a missing-file error, which is the point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.framework.lake import Lake


class PurgeError(RuntimeError):
    """Nothing was deleted; the message says why and what to do."""


@dataclass
class PurgePlan:
    raw: str
    curated: str
    needed_versions: list[int]
    latest_version: int
    files: list[str] = field(default_factory=list)
    deleted: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "raw": self.raw,
            "curated": self.curated,
            "needed_versions": self.needed_versions,
            "latest_version": self.latest_version,
            "files": len(self.files),
            "deleted": self.deleted,
        }


def lineage(
    lake: Lake, table: str, version: int, target: str, seen: set[tuple[str, int]] | None = None
) -> set[int]:
    """Versions of `target` that `table`@`version` was derived from, following commit `inputs` metadata."""
    seen = seen if seen is not None else set()
    if (table, version) in seen:
        return set()
    seen.add((table, version))
    if table == target:
        return {version}
    commit = next((c for c in lake.history(table) if int(c["version"]) == version), None)
    if commit is None:
        return set()
    try:
        inputs = json.loads(commit["meta"].get("inputs") or "{}")
    except ValueError:
        return set()
    found: set[int] = set()
    for name, v in inputs.items():
        if v is not None and lake.exists(name):
            found |= lineage(lake, name, int(v), target, seen)
    return found


def plan_purge(lake: Lake, raw: str, curated: str) -> PurgePlan:
    """What a purge would delete; refuses when the curated table does not descend from the raw one."""
    for name in (raw, curated):
        if not lake.exists(name):
            raise PurgeError(f"no table {name!r} in lake {lake.root}")
    curated_version = lake.version(curated)
    needed = sorted(lineage(lake, curated, int(curated_version), raw))
    if not needed:
        raise PurgeError(
            f"{curated!r} (version {curated_version}) has no recorded lineage to {raw!r}; nothing was deleted. "
            "Purge only after a run has curated the raw table."
        )
    dt = lake.delta(raw)
    latest = int(dt.version())
    candidates = dt.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)
    keep: set[str] = set()
    for v in needed:
        if v != latest:
            keep |= {Path(u).name for u in lake.delta(raw, v).file_uris()}
    files = sorted(f for f in candidates if Path(f).name not in keep)
    return PurgePlan(raw, curated, needed, latest, files)


def purge_raw(lake: Lake, raw: str, curated: str, yes: bool = False) -> PurgePlan:
    """Delete the raw table's data files that the curated lineage does not need (only with `yes`)."""
    plan = plan_purge(lake, raw, curated)
    if not yes or not plan.files:
        return plan
    root = lake.path(raw)
    if plan.needed_versions == [plan.latest_version]:
        lake.delta(raw).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    else:
        for name in plan.files:
            (root / name).unlink(missing_ok=True)
    plan.deleted = True
    return plan
