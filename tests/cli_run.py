"""Run the `refinery` CLI as a user does: a separate process, real output, real exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def refinery(
    *args: str,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    unset: Iterable[str] = (),
    timeout: int = 900,
) -> subprocess.CompletedProcess[str]:
    """`python -m jobs.cli ARGS` with this checkout importable by the process and its Spark workers.

    `env` adds to (or overrides) the test's environment; `unset` removes variables a test must not
    inherit (say, REFINERY_LAKE).
    """
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
