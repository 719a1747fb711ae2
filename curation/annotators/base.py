"""The annotator contract: one registered class per filter, declaring its config, columns and rules.

An annotator adds signal columns to a batch; `decide` turns them into drop reasons
later, with thresholds that can change without a rescan (docs/architecture.md,
"Annotate, then decide"). Everything a filter needs lives in one module: its
pydantic config, the Arrow fields it appends, a pure-Arrow `compute`, and the
`Rule`s decide may apply to those fields (each reason registered with its line).
The fused kernel (`curation.annotate.kernel`) runs every configured annotator over
the same batch, passing one `BatchContext`, so per-document work several
annotators share (the word split of the document's language) is done once.

No pyspark here or in any annotator module: they are pickled to the workers.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from curation.rules import Op, Rule
from curation.segmenters import Split
from curation.sentence_spans import SentenceSpans
from curation.words import split_document, splits_sentences
from pipelines.framework.drop_reason import register_reason


class AnnotatorConfig(BaseModel):
    """Base of annotator configs: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class BatchContext:
    """Per-batch state shared by the annotators of one fused scan.

    `langs` is filled by the language annotator (which runs first) or read from the
    batch's `lang` column; `scanned` says which documents language-scoped
    annotators measure (those in `signal_languages`, every document by default).
    """

    batch: pa.RecordBatch
    text_column: str = "text"
    url_column: str = "uri"
    signal_languages: frozenset[str] | None = None
    words_read: bool = False  # whether an annotator of this scan reads the documents' words
    langs: list[str | None] = field(default_factory=list)
    _texts: list[str | None] | None = None
    _splits: dict[int, Split] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return self.batch.num_rows

    def texts(self) -> list[str | None]:
        """The text column as Python strings, converted once per batch."""
        if self._texts is None:
            self._texts = self.batch.column(self.text_column).to_pylist()
        return self._texts

    def text(self, row: int) -> str:
        """One document's text, "" for a null text (every signal treats it as empty)."""
        return self.texts()[row] or ""

    def urls(self) -> list[str | None]:
        return self.batch.column(self.url_column).to_pylist()

    def lang(self, row: int) -> str | None:
        return self.langs[row] if self.langs else None

    def split(self, row: int) -> Split:
        """The document's split in its language, computed once for every annotator."""
        found = self._splits.get(row)
        if found is None:
            found = self._splits[row] = split_document(self.text(row), self.lang(row))
        return found

    def words(self, row: int) -> list[str]:
        """The document's words in its language's split."""
        return self.split(row).words

    def sentences(self, row: int) -> SentenceSpans | None:
        """The document's sentences where its language's segmenter gives them with the words another
        annotator reads (None elsewhere: splitting the document only for them would cost more)."""
        if self.words_read and splits_sentences(self.lang(row)):
            return self.split(row).sentences
        return None

    def scanned(self, row: int) -> bool:
        """Whether language-scoped signals are measured for this document."""
        return self.signal_languages is None or self.lang(row) in self.signal_languages


class Annotator(ABC):
    """A filter's signal columns and the rules over them. Subclasses set the class variables.

    `columns` are the Arrow fields `compute` returns, in order (override `fields` only
    where they depend on the config).
    `presets` are named rule lists decide applies when a spec names them
    (`presets: [gopher]`); `rules` apply whenever their column exists in decide's
    input, in `rule_rank` order across annotators. `language` marks the annotator
    that fills `BatchContext.langs` (it runs before the others), `uses_words` those
    that read `BatchContext.words`. Language-dependent signals go through
    `per_document`, which leaves documents outside `signal_languages` null, unmeasured.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]] = AnnotatorConfig
    columns: ClassVar[Sequence[pa.Field]] = ()
    presets: ClassVar[Mapping[str, Sequence[Rule]]] = {}
    rules: ClassVar[Sequence[Rule]] = ()
    rule_rank: ClassVar[int] = 100
    language: ClassVar[bool] = False
    uses_words: ClassVar[bool] = False

    def __init__(self, config: BaseModel | None = None):
        self.config = config if config is not None else self.Config()

    def fields(self) -> list[pa.Field]:
        """The columns this annotator appends, in the order `compute` returns them (its `columns`)."""
        return list(self.columns)

    @abstractmethod
    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        """One array per field, for every row of `ctx.batch` (pure Arrow/Python: runs on the workers)."""

    def prepare(self, broadcast: Callable[[Any], Any]) -> dict[str, Any]:
        """Driver-side setup before the scan (e.g. broadcasting an index); returns run metrics."""
        return {}


def declared_rule(reason: str, column: str, op: Op, value: Any = None, *, means: str) -> Rule:
    """A rule whose reason is registered with the one line the report shows beside its count."""
    register_reason(reason, means)
    return Rule(reason, column, op, value)


def per_document(
    ctx: BatchContext, fields: Sequence[pa.Field], measure: Callable[[int], Sequence[Any]]
) -> list[pa.Array]:
    """Columns from one row of values per document in `signal_languages` (null rows for the others)."""
    skipped = [None] * len(fields)
    rows = [measure(i) if ctx.scanned(i) else skipped for i in range(ctx.num_rows)]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(fields)
    return [pa.array([_clean(v) for v in col], f.type) for col, f in zip(columns, fields, strict=True)]


def _clean(value: Any) -> Any:
    """NaN as null (a signal that cannot be measured), numpy scalars as Python ones."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
