"""Drop raw-table versions (which hold unredacted PII) once the curated table no longer needs them.

Lineage comes from commit metadata: every stage commit records the table
versions it read (`inputs`). Walking back from the curated table's latest
version finds the raw versions it was derived from; those stay readable (so a
run can still be reproduced and audited), every other version's data files are
deleted: the files some version committed that neither the latest version nor
a still-needed one references. Only committed files are candidates, so a file
that a concurrent writer has written but not yet committed is never touched
(orphans of killed writers are the lake's orphan cleanup's, with its grace
period). Deletes go through the I/O layer, so a lake on object storage purges
the same way; delta-rs's vacuum is not used (it lists with retention 0, which
would take uncommitted files too, and it holds the interpreter while it lists).
The Delta log is kept, so history shows what existed; reading a purged version
fails with a missing-file error, which is the point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pipelines.framework.lake import Lake, TableMissingError
from pipelines.framework.storage import Location


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
    latest = int(lake.version(raw))
    root = lake.path(raw)
    committed = {v: _data_files(lake, raw, v, root) for v in range(latest + 1)}
    keep = committed[latest].union(*(committed[v] for v in needed))
    files = sorted(set().union(*committed.values()) - keep)
    return PurgePlan(raw, curated, needed, latest, files)


def _data_files(lake: Lake, table: str, version: int, root: Location) -> set[str]:
    """The data files `table`@`version` references, relative to the table's root (none for a version
    whose log entry was cleaned up: nothing can be read of it anyway)."""
    try:
        uris = lake.delta(table, version).file_uris()
    except TableMissingError:
        return set()
    return {Location.parse(uri).relative_to(root) for uri in uris}


def purge_raw(lake: Lake, raw: str, curated: str, yes: bool = False) -> PurgePlan:
    """Delete the raw table's data files that the curated lineage does not need (only with `yes`)."""
    plan = plan_purge(lake, raw, curated)
    if not yes or not plan.files:
        return plan
    root = lake.path(raw)
    for name in plan.files:
        (root / name).delete()
    plan.deleted = True
    return plan
