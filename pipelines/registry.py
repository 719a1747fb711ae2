"""Stage names usable in a job spec, mapped to their classes.

Classes are imported only when a spec names them, so a job without PII never
imports spaCy and one without training never imports torch.
"""

from __future__ import annotations

import importlib

from pipelines.stage import Stage

STAGES: dict[str, str] = {
    "ingest": "pipelines.ingest:Ingest",
    "pii": "pii.stage:PiiStage",
}


def stage_class(name: str) -> type[Stage]:
    """The Stage subclass registered under `name`; the error lists the known names."""
    try:
        target = STAGES[name]
    except KeyError:
        known = ", ".join(sorted(STAGES))
        raise KeyError(f"unknown stage {name!r}; known stages: {known}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
