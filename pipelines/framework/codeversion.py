"""The code version recorded in every commit and used in stage resume keys.

A hash of the project's own source files (not the git commit) so that a rerun is
skipped only when the code that produced a table is byte-for-byte the same, and
so that it works from an installed wheel or a `--py-files` zip without git.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

PACKAGES = ("pipelines", "curation", "dedup", "pii", "training", "jobs")


def code_version() -> str:
    """`REFINERY_CODE_VERSION` pins it (deployments that patch files but not behaviour); else the source hash."""
    return os.environ.get("REFINERY_CODE_VERSION") or _source_hash()


@lru_cache(maxsize=1)
def _source_hash() -> str:
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
