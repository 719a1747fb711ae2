"""Annotators by name: the `refinery.annotators` entry points, and the rules they declare for `decide`.

An annotator registers where it is defined, as an entry point in pyproject.toml
(`[project.entry-points."refinery.annotators"]`, name -> "module:Class"); a spec
may also name one by import path ("package.module:Class"), so users add their own
without editing this package. Lookup is lazy: only the named annotators' modules
are imported, except where decide needs every annotator's rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext
from curation.rules import Rule
from pipelines.framework.plugins import load_class, registered
from pipelines.framework.validation import field_problems

GROUP = "refinery.annotators"
# Today's annotate without an `annotators:` list: language ID, then the Gopher, C4 and FineWeb signals.
DEFAULT_ANNOTATORS = ("langid", "gopher", "c4", "fineweb")

__all__ = [
    "DEFAULT_ANNOTATORS",
    "Annotator",
    "AnnotatorConfig",
    "BatchContext",
    "annotator_class",
    "build",
    "column_rules",
    "known_annotators",
    "preset_reasons",
    "preset_rules",
    "resolve",
]


def known_annotators() -> list[str]:
    return sorted(registered(GROUP))


def annotator_class(name: str) -> type[Annotator]:
    """The Annotator subclass registered as `name`, or named by import path (`package.module:Class`)."""
    return load_class(GROUP, name, Annotator, "annotator")


def resolve(position: int, entry: Any) -> dict[str, BaseModel]:
    """`name` or `{name: config}` as `{name: validated config}`; errors name the entry and the field."""
    if isinstance(entry, str):
        name, raw = entry, None
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, raw),) = entry.items()
    else:
        raise ValueError(f"annotators[{position}]: expected a name or {{name: {{config}}}}, got {entry!r}")
    if isinstance(raw, BaseModel):
        return {name: raw}
    cls = annotator_class(name)
    try:
        return {name: cls.Config.model_validate(raw or {})}
    except ValidationError as exc:
        raise ValueError(f"annotators[{position}] {name}: {field_problems(exc, root='config')}") from None


def build(entries: Iterable[Any]) -> list[Annotator]:
    """Annotators from spec entries (`name`, `{name: config}`, or resolved ones), in order."""
    return [
        annotator_class(name)(config)
        for position, entry in enumerate(entries)
        for name, config in resolve(position, entry).items()
    ]


def _all_classes() -> list[type[Annotator]]:
    """Every registered annotator, in rule rank order (decide reads their rules)."""
    return sorted((annotator_class(name) for name in known_annotators()), key=lambda c: (c.rule_rank, c.name))


def _presets() -> dict[str, list[Rule]]:
    return {name: list(rules) for cls in _all_classes() for name, rules in cls.presets.items()}


def preset_reasons() -> set[str]:
    """Every reason some preset can give: the names `thresholds` may override."""
    return {rule.reason for rules in _presets().values() for rule in rules}


def preset_rules(presets: Iterable[str], overrides: Mapping[str, Any] | None = None) -> list[Rule]:
    """The rules of the named presets in order, each reason once, thresholds overridden by reason.

    An override of None or False disables the rule; unknown preset or reason names are errors.
    """
    known = _presets()
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - preset_reasons())
    if unknown:
        raise ValueError(f"unknown threshold name(s) {unknown}; known: {sorted(preset_reasons())}")
    rules: list[Rule] = []
    seen: set[str] = set()
    for name in presets:
        if name not in known:
            raise ValueError(f"unknown preset {name!r}; known presets: {sorted(known)}")
        for rule in known[name]:
            if rule.reason in seen:
                continue
            seen.add(rule.reason)
            value = overrides.get(rule.reason, rule.value)
            if rule.reason in overrides and (value is None or value is False):
                continue
            rules.append(rule if rule.op == "true" else replace(rule, value=value))
    return rules


def column_rules(columns: Iterable[str], values: Mapping[str, Any] | None = None) -> list[Rule]:
    """The always-on rules (blocklists, contamination) whose column is present, in rule rank order.

    `values` sets a rule's threshold by reason (decide's `min_blocked_words`, for instance).
    """
    present = set(columns)
    values = dict(values or {})
    return [
        replace(rule, value=values[rule.reason]) if rule.reason in values else rule
        for cls in _all_classes()
        for rule in cls.rules
        if rule.column in present
    ]
