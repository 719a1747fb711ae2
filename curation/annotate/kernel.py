"""The fused annotation kernel: every configured annotator over one batch, the text read once.

The language annotator runs first (the word split of every heuristic signal
depends on the language), then the others in the order listed, all sharing one
`BatchContext`, so a document's words are split once for Gopher and FineWeb alike.
With `rules`, decide's thresholds are applied in the same call (`drop_reasons`, and
`drop_reason` where a row is still kept), so a job that does not need to re-decide
later writes one table instead of two (docs/architecture.md, "Annotate, then decide").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from curation.annotators.base import Annotator, BatchContext
from curation.rules import DROP_REASONS, Rule, arrow_failing
from pipelines.framework import drop_reason

REASONS_FIELD = pa.field(DROP_REASONS, pa.list_(pa.string()))


@dataclass
class AnnotateKernel:
    """Calling it maps a batch to the batch plus every annotator's columns (and decide's, with `rules`).

    Without a language annotator, the batch's own `lang` column (if any) gives each
    document's language; `signal_languages` limits language-scoped annotators to
    those languages (null signals for the rest).
    """

    annotators: Sequence[Annotator]
    text_column: str = "text"
    url_column: str = "uri"
    signal_languages: frozenset[str] | None = None
    rules: Sequence[Rule] | None = None
    lang_column: str = "lang"
    _ordered: list[Annotator] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ordered = sorted(self.annotators, key=lambda a: not a.language)

    def fields(self) -> list[pa.Field]:
        """The annotation columns appended, in order (decide's `drop_reasons` last, with `rules`)."""
        out = [f for annotator in self._ordered for f in annotator.fields()]
        return [*out, REASONS_FIELD] if self.rules is not None else out

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        appended = self.fields()
        clash = sorted({f.name for f in appended} & set(input_schema.names))
        if clash:
            raise ValueError(
                f"input already has column(s) {clash}: annotate a table that was not annotated yet "
                "(read the documents table), or drop those columns first"
            )
        if self.rules is not None and drop_reason.DROP_REASON not in input_schema.names:
            appended.append(drop_reason.FIELD)
        return pa.schema(list(input_schema) + appended)

    def context(self, batch: pa.RecordBatch) -> BatchContext:
        words_read = any(a.uses_words for a in self._ordered)
        ctx = BatchContext(batch, self.text_column, self.url_column, self.signal_languages, words_read)
        if not any(a.language for a in self._ordered) and self.lang_column in batch.schema.names:
            ctx.langs = batch.column(self.lang_column).to_pylist()
        return ctx

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ctx = self.context(batch)
        columns = list(batch.columns)
        names = list(batch.schema.names)
        for annotator in self._ordered:
            arrays = annotator.compute(ctx)
            declared = annotator.fields()
            if len(arrays) != len(declared):
                raise ValueError(
                    f"annotator {annotator.name!r} returned {len(arrays)} arrays for {len(declared)} fields"
                )
            columns += arrays
            names += [f.name for f in declared]
        annotated = pa.RecordBatch.from_arrays(columns, names=names)
        return annotated if self.rules is None else self._decide(annotated)

    def _decide(self, annotated: pa.RecordBatch) -> pa.RecordBatch:
        """Append every failing reason, and set the first where the row is still kept (an earlier one wins)."""
        failing = arrow_failing(annotated, self.rules)
        first = pa.array([reasons[0] if reasons else None for reasons in failing], pa.string())
        with_reasons = annotated.append_column(REASONS_FIELD, pa.array(failing, REASONS_FIELD.type))
        return drop_reason.with_arrow_reasons(with_reasons, drop_reason.arrow_first(annotated, first))
