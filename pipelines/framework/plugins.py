"""Classes found by name: entry points that the installed distributions declare, or an import path.

Stages and annotators register where they are defined, as entry points in pyproject.toml
(docs/architecture.md, "Adding a stage"), so no table in the framework names an area. A spec
may also name a class by import path (`package.module:Class`), so a user runs their own class
without registering it. Only the named class's module is imported: a job without pii never
imports spaCy, one without training never imports torch.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TypeVar

T = TypeVar("T")


class PluginError(KeyError, ValueError):
    """An unknown, unimportable or wrong-kind name; a KeyError and a ValueError so that callers
    catching either (spec loading catches KeyError, config validation ValueError) report it."""

    def __str__(self) -> str:
        return str(self.args[0])


@cache
def registered(group: str) -> dict[str, str]:
    """`{name: "module:Class"}` of every entry point in `group` (read once per process).

    One name declared twice with different targets is an error: which one a spec meant is unknowable.
    """
    found: dict[str, str] = {}
    for point in entry_points(group=group):
        known = found.setdefault(point.name, point.value)
        if known != point.value:
            raise PluginError(f"{group}: {point.name!r} is registered twice, as {known} and {point.value}")
    return found


def load_class(group: str, name: str, base: type[T], kind: str) -> type[T]:
    """The `base` subclass registered as `name` in `group`, or named by import path.

    `kind` names what is looked up in errors ("stage", "annotator"); an unknown name's error lists
    the registered ones, so a typo in a spec shows the right spelling.
    """
    target = name if ":" in name else registered(group).get(name)
    if target is None:
        known = ", ".join(sorted(registered(group)))
        raise PluginError(f"unknown {kind} {name!r}; known {kind}s: {known}")
    module, _, attr = target.partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        stale = "" if ":" in name else f"; if it moved, update its {group} entry point and reinstall"
        raise PluginError(f"{kind} {name!r}: cannot import {target}: {exc}{stale}") from None
    if not (isinstance(found, type) and issubclass(found, base)):
        raise PluginError(f"{kind} {name!r}: {target} is not a subclass of {base.__name__}")
    return found
