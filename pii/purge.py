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


# The stage whose output is the redacted successor of the raw table (pii.stage.PiiStage.name).
PII_STAGE = "pii"


@dataclass
class PurgePlan:
    """What a purge deletes: `files` are the data files still there that no needed version references
    (`already_gone`: ones an earlier purge deleted); `deleted_files` is what this call deleted."""

    raw: str
    curated: str
    needed_versions: list[int]
    latest_version: int
    files: list[str] = field(default_factory=list)
    already_gone: int = 0
    deleted_files: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "raw": self.raw,
            "curated": self.curated,
            "needed_versions": self.needed_versions,
            "latest_version": self.latest_version,
            "files": len(self.files),
            "already_gone": self.already_gone,
            "deleted": self.deleted_files > 0,
            "deleted_files": self.deleted_files,
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
    """What a purge would delete; refuses unless `raw` is a raw table and `curated` its redacted
    successor, derived from it."""
    if raw == curated:
        raise PurgeError(
            f"--raw and --curated both name {raw!r}; a table is not its own redacted successor. "
            "Nothing was deleted."
        )
    for name in (raw, curated):
        if not lake.exists(name):
            raise PurgeError(f"no table {name!r} in lake {lake.root}")
    _require_raw(lake, raw)
    _require_redacted(lake, curated)
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
    unneeded = sorted(set().union(*committed.values()) - keep)
    present = [name for name in unneeded if (root / name).is_file()]  # not what a purge took already
    return PurgePlan(raw, curated, needed, latest, present, already_gone=len(unneeded) - len(present))


def _require_raw(lake: Lake, raw: str) -> None:
    """A raw table is a lineage source (the ingest output): no version of it was derived from another
    table. Purging a derived table (`deduped`) would delete versions that are no raw data."""
    for commit in lake.history(raw):
        inputs = _inputs(commit)
        if inputs is None:
            raise PurgeError(
                f"{raw!r} version {commit['version']} records inputs that are not JSON; cannot tell whether "
                "it is a raw table. Nothing was deleted."
            )
        derived = {name: v for name, v in inputs.items() if name != raw}
        if derived:
            sources = ", ".join(f"{name}@{v}" for name, v in sorted(derived.items()))
            raise PurgeError(
                f"{raw!r} is not a raw table: its version {commit['version']} was derived from {sources}. "
                "purge-raw deletes versions of a raw table (one no other table feeds, such as ingest's "
                "`documents`) that its redacted successor does not need. Nothing was deleted."
            )


def _require_redacted(lake: Lake, curated: str) -> None:
    """The curated table must be the pii stage's output where its commits say which stage wrote it
    (tables written outside a run record none): the raw versions to keep are the ones *it* needs."""
    stage_commit = next((c for c in lake.history(curated) if c["meta"].get("stage")), None)
    if stage_commit is not None and stage_commit["meta"]["stage"] != PII_STAGE:
        raise PurgeError(
            f"{curated!r} (version {stage_commit['version']}) was written by stage "
            f"{stage_commit['meta']['stage']!r}, not {PII_STAGE!r}: it is not the redacted successor, and "
            "the raw versions it needs are not the ones to keep. Name the pii stage's output with "
            "--curated. Nothing was deleted."
        )


def _inputs(commit: dict) -> dict[str, object] | None:
    """A commit's recorded input versions ({} when none are recorded), None when they are not JSON."""
    try:
        inputs = json.loads(commit["meta"].get("inputs") or "{}")
    except ValueError:
        return None
    return inputs if isinstance(inputs, dict) else None


def _data_files(lake: Lake, table: str, version: int, root: Location) -> set[str]:
    """The data files `table`@`version` references, relative to the table's root (none for a version
    whose log entry was cleaned up: nothing can be read of it anyway)."""
    try:
        uris = lake.delta(table, version).file_uris()
    except TableMissingError:
        return set()
    return {Location.parse(uri).relative_to(root) for uri in uris}


def purge_raw(lake: Lake, raw: str, curated: str, yes: bool = False) -> PurgePlan:
    """Delete the raw table's data files that the curated lineage does not need (only with `yes`);
    the plan then counts the files deleted."""
    plan = plan_purge(lake, raw, curated)
    if not yes:
        return plan
    root = lake.path(raw)
    for name in plan.files:
        (root / name).delete()
    plan.deleted_files = len(plan.files)
    return plan
