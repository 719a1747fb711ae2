"""The fused annotation kernel: language, quality signals, blocklists and benchmark n-gram hits in one scan.

One call per Arrow batch reads the text column once, predicts every document's
language (one fastText call; lingua only for the texts the ensemble routes), then computes each document's signals with
the word split of its language, and appends every column. Other per-document
kernels (the MinHash signature from dedup, for instance) can ride the same scan:
pass them as `extra` and their columns are appended to the same batch, so a job
that needs both never reads the text twice. With `rules`, decide's thresholds are
applied in the same call too (`drop_reasons`, `drop_reason`), so a job that does
not need to re-decide later writes one table instead of two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from curation.blocklist import BLOCKLIST_FIELDS, DomainBlocklist, WordBlocklist
from curation.decontam import DECONTAM_FIELDS, DecontamIndex
from curation.langid_ensemble import LANGID_COLUMNS, LangIdConfig, langid_columns
from curation.rules import DROP_REASON, DROP_REASONS, Rule, arrow_decide
from curation.signals import SIGNAL_FIELDS, SignalParams, signal_arrays

# An extra kernel: a function of the input batch returning the arrays (or a batch of them) to append,
# and the fields those columns have.
ExtraKernel = tuple[Callable[[pa.RecordBatch], pa.RecordBatch | Sequence[pa.Array]], Sequence[pa.Field]]


@dataclass
class Annotator:
    """The fused kernel's configuration; calling it maps a batch to the batch plus annotation columns.

    `decontam` may be the index itself or a Spark broadcast of it (anything with
    `.value`), so that executors load a large index once per worker, not per task.
    `langid` is the backend's config, None for no language ID.
    `signal_languages` limits the signal scan to those languages (null signals for
    the rest); `rules` fuses decide (see the module docstring).
    """

    params: SignalParams = field(default_factory=SignalParams)
    langid: LangIdConfig | None = field(default_factory=LangIdConfig)
    signals: bool = True
    decontam: Any = None
    domains: DomainBlocklist | None = None
    words: WordBlocklist | None = None
    extra: Sequence[ExtraKernel] = ()
    text_column: str = "text"
    url_column: str = "uri"
    lang_column: str | None = None
    signal_languages: frozenset[str] | None = None
    rules: Sequence[Rule] | None = None

    def fields(self) -> list[pa.Field]:
        """The columns this kernel appends, in order."""
        out: list[pa.Field] = []
        if self.langid is not None:
            out += LANGID_COLUMNS
        if self.signals:
            out += SIGNAL_FIELDS
        if self.decontam is not None:
            out += DECONTAM_FIELDS
        if self.domains is not None:
            out.append(BLOCKLIST_FIELDS["url"])
        if self.words is not None:
            out.append(BLOCKLIST_FIELDS["words"])
        for _, extra_fields in self.extra:
            out += list(extra_fields)
        if self.rules is not None:
            out.append(pa.field(DROP_REASONS, pa.list_(pa.string())))
        return out

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        appended = self.fields()
        clash = sorted({f.name for f in appended} & set(input_schema.names))
        if clash:
            raise ValueError(
                f"input already has column(s) {clash}: annotate a table that was not annotated yet "
                "(read the documents table), or drop those columns first"
            )
        if self.rules is not None and DROP_REASON not in input_schema.names:
            appended.append(pa.field(DROP_REASON, pa.string()))
        return pa.schema(list(input_schema) + appended)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column(self.text_column).to_pylist()
        arrays: list[pa.Array] = []
        if self.langid is not None:
            arrays += langid_columns(texts, self.langid)
            langs = arrays[0].to_pylist()
        elif self.lang_column and self.lang_column in batch.schema.names:
            langs = batch.column(self.lang_column).to_pylist()
        else:
            langs = [None] * len(texts)
        if self.signals:
            arrays += signal_arrays(texts, langs, self.params, self.signal_languages)
        if self.decontam is not None:
            index: DecontamIndex = getattr(self.decontam, "value", self.decontam)
            arrays += index.arrays(texts)
        if self.domains is not None:
            arrays.append(self.domains.array(batch.column(self.url_column).to_pylist()))
        if self.words is not None:
            arrays.append(self.words.array(texts))
        for kernel, extra_fields in self.extra:
            arrays += _appended(kernel(batch), batch, extra_fields)
        names = batch.schema.names + [f.name for f in self.fields()]
        if self.rules is None:
            return pa.RecordBatch.from_arrays([*batch.columns, *arrays], names=names)
        annotated = pa.RecordBatch.from_arrays([*batch.columns, *arrays], names=names[:-1])
        reasons, first = arrow_decide(annotated, self.rules)
        columns = list(annotated.columns)
        if DROP_REASON in batch.schema.names:  # replaced in place: an earlier reason stays first
            columns[annotated.schema.get_field_index(DROP_REASON)] = first
            return pa.RecordBatch.from_arrays([*columns, reasons], names=names)
        return pa.RecordBatch.from_arrays([*columns, reasons, first], names=[*names, DROP_REASON])


def _appended(result: pa.RecordBatch | Sequence[pa.Array], batch: pa.RecordBatch, fields: Sequence[pa.Field]):
    """The arrays an extra kernel appends, whether it returned them or a batch holding them."""
    if isinstance(result, pa.RecordBatch):
        return [result.column(f.name) for f in fields]
    arrays = list(result)
    if len(arrays) != len(fields):
        raise ValueError(f"extra kernel returned {len(arrays)} arrays for {len(fields)} declared fields")
    return arrays
