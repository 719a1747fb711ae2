"""Stage names usable in a job spec: the `refinery.stages` entry points (pipelines/framework/plugins.py).

Each stage is declared in pyproject.toml beside the others, `name = "module:Class"`
(docs/architecture.md, "Adding a stage"); after editing that table, `pip install -e . --no-deps`
updates the installed metadata this module reads.
"""

from __future__ import annotations

from pipelines.framework.plugins import load_class, registered
from pipelines.framework.stage import Stage

GROUP = "refinery.stages"


def known_stages() -> list[str]:
    """The registered stage names, sorted (for errors and listings)."""
    return sorted(registered(GROUP))


def stage_class(name: str) -> type[Stage]:
    """The Stage subclass registered under `name`, or named by import path (`package.module:Class`).

    Raises PluginError (a KeyError) naming the known stages when `name` is neither.
    """
    return load_class(GROUP, name, Stage, "stage")
