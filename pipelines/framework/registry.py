"""Stage names usable in a job spec, mapped to their classes.

Classes are imported only when a spec names them, so a job without PII never
imports spaCy and one without training never imports torch.
"""

from __future__ import annotations

import importlib

from pipelines.framework.stage import Stage

STAGES: dict[str, str] = {
    "ingest": "pipelines.ingest.stage:Ingest",
    "pii": "pii.stage:PiiStage",
    "augment": "curation.augment:Augment",
    "annotate": "curation.stages:Annotate",
    "decide": "curation.stages:Decide",
    "decontaminate": "curation.stages:Decontaminate",
    "quality_classifier": "curation.stages:QualityClassifier",
    "shards": "training.shards_stage:Shards",
    "exact_dedup": "dedup.stages:ExactDedup",
    "minhash_dedup": "dedup.stages:MinHashDedup",
    "line_dedup": "dedup.stages:LineDedup",
    "image_dedup": "dedup.stages:ImageDedup",
}


def stage_class(name: str) -> type[Stage]:
    """The Stage subclass registered under `name`, or named by import path (`package.module:Class`).

    Import paths let users run their own stages without editing this table.
    """
    try:
        target = name if ":" in name else STAGES[name]
    except KeyError:
        known = ", ".join(sorted(STAGES))
        raise KeyError(f"unknown stage {name!r}; known stages: {known}") from None
    module, _, cls = target.partition(":")
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"stage {name!r}: cannot import {target}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, Stage)):
        raise KeyError(f"stage {name!r}: {target} is not a Stage subclass")
    return found
