"""Per-language thresholds and stop words for the presets, read from a YAML file shipped with the package.

Why a file and not code: every number has a source (FineWeb-2's published per-language configs,
named per entry in `fineweb2.yaml`), and a user can point decide and Gopher at their own file
without editing the package. Languages the file does not list use the presets' own numbers
(datatrove's English defaults), so a file that lists only English changes nothing.

`by_language` turns preset rules into rules whose threshold follows the row's `lang` column
(`curation.rules.ByLanguage`), which the Spark and Arrow evaluators both apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.langid.labels import check_label
from curation.rules import ByLanguage, Rule
from pipelines.framework.validation import field_problems

# Through importlib.resources, not the file system: on a cluster this package is imported from the
# `--py-files` zip (jobs/submit.py), where a Path next to __file__ names nothing that exists.
PACKAGED: Traversable = files(__name__)
DEFAULT_TABLE = "fineweb2"


class LanguageEntry(BaseModel):
    """One language's numbers: where they come from, Gopher's stop words, thresholds by reason."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="where the numbers come from")
    stop_words: list[str] = Field(min_length=1, description="words counted by gopher_stop_word_count")
    thresholds: dict[str, float] = Field(default_factory=dict, description="reason -> cut-off")


class LanguageTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    languages: dict[str, LanguageEntry]

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, languages: dict[str, LanguageEntry]) -> dict[str, LanguageEntry]:
        """A key no language ID outputs would never apply its numbers: refused, naming the key."""
        for code in languages:
            check_label(code)
        return languages

    def stop_words(self, lang: str | None) -> frozenset[str] | None:
        """The language's stop words, None where the table does not list it."""
        entry = self.languages.get((lang or "").lower())
        return frozenset(entry.stop_words) if entry else None

    def reasons(self) -> set[str]:
        return {reason for entry in self.languages.values() for reason in entry.thresholds}

    def values(self, reason: str) -> dict[str, float]:
        """Language -> cut-off for one reason, for the languages that set it."""
        return {lang: e.thresholds[reason] for lang, e in self.languages.items() if reason in e.thresholds}

    def check_reasons(self, known: Iterable[str], name: str) -> None:
        unknown = sorted(self.reasons() - set(known))
        if unknown:
            raise ValueError(f"language table {name!r} sets unknown reason(s) {unknown}")


def language_table(name: str = DEFAULT_TABLE) -> LanguageTable:
    """The table named `name` (packaged) or at path `name`; errors name the file and the field."""
    if "/" not in name and (PACKAGED / f"{name}.yaml").is_file():
        return _read_packaged(name)
    path = Path(name)
    if not path.is_file():
        packaged = sorted(
            p.name.removesuffix(".yaml") for p in PACKAGED.iterdir() if p.name.endswith(".yaml")
        )
        raise ValueError(f"language table {name!r}: no such file (packaged tables: {packaged})")
    return _read_table(path, path.stat().st_mtime_ns)


@cache
def _read_packaged(name: str) -> LanguageTable:
    """Parsed once per process: package data does not change under a running program."""
    return _parse(PACKAGED / f"{name}.yaml")


@cache
def _read_table(path: Path, mtime_ns: int) -> LanguageTable:
    """Parsed once per file version (every batch's Gopher and every rule list ask for it)."""
    return _parse(path)


def _parse(source: Path | Traversable) -> LanguageTable:
    """Errors name the file and the fields, not pydantic's layout."""
    try:
        return LanguageTable.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise ValueError(f"language table {source}: {field_problems(exc)}") from None


def by_language(rules: Sequence[Rule], table: LanguageTable, keep: Iterable[str] = ()) -> list[Rule]:
    """`rules` with each threshold the table sets for some language made to follow the row's `lang`.

    Reasons in `keep` (thresholds the user set for every language) stay as they are; a language
    the table does not list, or a null `lang`, gets the rule's own value.
    """
    fixed = set(keep)
    out: list[Rule] = []
    for rule in rules:
        values = table.values(rule.reason) if rule.reason not in fixed and rule.op != "true" else {}
        differing = tuple(sorted((lang, v) for lang, v in values.items() if v != rule.value))
        out.append(replace(rule, value=ByLanguage(rule.value, differing)) if differing else rule)
    return out
