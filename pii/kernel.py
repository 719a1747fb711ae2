"""The PII kernel: `pa.RecordBatch -> pa.RecordBatch`, no Spark import.

Each row gets one of these scopes (column `pii_scope`):
- `full`: kept row in a NER language (`lang` in `ner_languages`, or no `lang` column and
  `default_language` is one): NER and pattern recognizers.
- `patterns`: kept row in another language, or any kept row when `ner` is off: pattern recognizers only.
- `withheld`: row already dropped by an earlier stage (`drop_reason` set), with `dropped: withhold`
  (the default): text set to null, so the curated table holds no PII of rows nobody trains on.
- `dropped`: dropped row with `dropped: patterns`: pattern recognizers only (no e-mail, phone or card
  number survives, names do: NER, the expensive part, runs on kept rows only).
- `failed`: analysis or redaction raised on this document (a bug or an input the libraries cannot
  take): its text is withheld (null) like a dropped row, so it can neither leak nor stop the job.
- null: the text is null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from pii.overlaps import SpanIndex
from pii.redact import Redaction
from pii.settings import NER_ENTITIES, PiiSettings
from pipelines.framework.drop_reason import arrow_reasons

SPAN_TYPE = pa.struct(
    [
        ("entity_type", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("score", pa.float64()),
        ("recognizer", pa.string()),
    ]
)
OUTPUT_FIELDS = [
    pa.field("pii_spans", pa.list_(SPAN_TYPE)),
    pa.field("pii_counts", pa.map_(pa.string(), pa.int32())),
    pa.field("pii_scope", pa.string()),
]
OUTPUT_NAMES = {f.name for f in OUTPUT_FIELDS}
# Redaction rounds per document (the first plus re-analyses of changed text); two suffice in practice.
MAX_ROUNDS = 4
FAILED = "failed"
CORE = 24
MARGIN = 32


def output_schema(input_schema: pa.Schema) -> pa.Schema:
    """The input columns (earlier pii_* columns replaced) followed by pii_spans, pii_counts, pii_scope."""
    if "text" not in input_schema.names:
        raise ValueError(f"the pii stage needs a `text` column; the input has {input_schema.names}")
    kept = [f for f in input_schema if f.name not in OUTPUT_NAMES]
    return pa.schema([*kept, *OUTPUT_FIELDS])


@dataclass
class PiiKernel:
    """Picklable kernel: settings, the resolved pseudonym key and the policy for dropped rows."""

    settings: PiiSettings
    schema: pa.Schema
    key: bytes | None = None
    dropped: str = "withhold"

    def scopes(self, batch: pa.RecordBatch) -> list[str | None]:
        names = batch.schema.names
        texts = batch.column("text").to_pylist()
        reasons = arrow_reasons(batch).to_pylist()
        langs = (
            batch.column("lang").to_pylist()
            if "lang" in names
            else [self.settings.default_language] * len(texts)
        )
        ner_langs = set(self.settings.ner_languages)
        out: list[str | None] = []
        for text, reason, lang in zip(texts, reasons, langs, strict=True):
            if text is None:
                out.append(None)
            elif reason is not None:
                out.append("withheld" if self.dropped == "withhold" else "dropped")
            elif self.settings.ner_entities() and lang in ner_langs:
                out.append("full")
            else:
                out.append("patterns")
        return out

    def _redact(self, texts: list[str], use_ner: list[bool], doc_ids: list[str]) -> list:
        """Analyze and redact, then re-analyze changed texts until the analyzer finds nothing more.

        Names found anywhere in a text are redacted at each of their occurrences (`propagate`).
        A replacement only changes NER's view of the words near it (its features span a few
        tokens), so later rounds re-analyze windows around the previous round's replacements
        (CORE characters either side, plus MARGIN of context whose findings are ignored), and
        only in texts that changed in the previous round.
        """
        from pii.engine import get_analyzer
        from pii.redact import propagate

        analyzer = get_analyzer(self.settings)
        redactor = _redactor(self.settings.policy, self.key, self.settings.mask_char)
        found = analyzer.analyze_batch(texts, use_ner)
        done = [
            redactor.redact(t, propagate(t, f, NER_ENTITIES), d)
            for t, f, d in zip(texts, found, doc_ids, strict=True)
        ]
        pending = [i for i, red in enumerate(done) if red.spans]
        for _ in range(MAX_ROUNDS - 1):
            if not pending:
                break
            windows = [(i, lo, hi, cores) for i in pending for lo, hi, cores in _windows(done[i])]
            found = analyzer.analyze_batch(
                [done[i].text[lo:hi] for i, lo, hi, _ in windows], [use_ner[i] for i, _, _, _ in windows]
            )
            again: dict[int, list] = {}
            for (i, lo, _, cores), results in zip(windows, found, strict=True):
                in_core = SpanIndex(cores)  # a dense page's window holds thousands of cores
                for r in results:
                    r.start, r.end = r.start + lo, r.end + lo
                    if in_core.overlaps(r.start, r.end):
                        again.setdefault(i, []).append(r)
            for i, results in again.items():
                results = propagate(done[i].text, results, NER_ENTITIES)
                done[i] = done[i].then(redactor.redact(done[i].text, results, doc_ids[i]))
            pending = list(again)
        return done

    def _redact_isolated(self, texts: list[str], use_ner: list[bool], doc_ids: list[str]) -> list:
        """`_redact` for the batch; if it raises, again one document at a time, with None for each
        document that fails alone (its text is then withheld, never kept unredacted)."""
        try:
            return self._redact(texts, use_ner, doc_ids)
        except Exception:  # noqa: BLE001 - find the document(s) at fault; the others go on
            out = []
            for text, ner, doc_id in zip(texts, use_ner, doc_ids, strict=True):
                try:
                    out.append(self._redact([text], [ner], [doc_id])[0])
                except Exception:  # noqa: BLE001
                    out.append(None)
            return out

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        scopes = self.scopes(batch)
        ids = batch.column("doc_id").to_pylist() if "doc_id" in batch.schema.names else [""] * len(texts)
        rows = [i for i, s in enumerate(scopes) if s in ("full", "patterns", "dropped")]
        redactions = self._redact_isolated(
            [texts[i] for i in rows], [scopes[i] == "full" for i in rows], [ids[i] or "" for i in rows]
        )
        new_text: list[str | None] = list(texts)
        spans: list[list[dict] | None] = [None] * len(texts)
        counts: list[list[tuple[str, int]] | None] = [None] * len(texts)
        for i, red in zip(rows, redactions, strict=True):
            if red is None:
                scopes[i] = FAILED
                continue
            new_text[i] = red.text
            spans[i] = [s.as_dict() for s in red.spans]
            counts[i] = sorted(red.counts().items())
        for i, scope in enumerate(scopes):
            if scope in ("withheld", FAILED):
                new_text[i] = None
        columns = {name: batch.column(name) for name in batch.schema.names if name not in OUTPUT_NAMES}
        columns["text"] = pa.array(new_text, pa.string())
        columns["pii_spans"] = pa.array(spans, pa.list_(SPAN_TYPE))
        columns["pii_counts"] = pa.array(counts, pa.map_(pa.string(), pa.int32()))
        columns["pii_scope"] = pa.array(scopes, pa.string())
        return pa.RecordBatch.from_arrays(
            [columns[f.name].cast(f.type) for f in self.schema], schema=self.schema
        )


def _windows(red: Redaction) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(lo, hi, cores) windows around the last round's replacements, cut at whitespace.

    Each core is a replacement with CORE characters either side; each window adds MARGIN
    characters of context. Windows that overlap become one window with several cores, so that
    no stretch of text goes through the NER twice in a round (and each core sees real text
    rather than a window edge on that side).
    """
    text = red.text
    cores: list[tuple[int, int]] = []
    for _, _, start, end in sorted(red.edits, key=lambda e: e[2]):
        core = (max(0, start - CORE), min(len(text), end + CORE))
        if cores and core[0] <= cores[-1][1]:
            core = (cores[-1][0], max(core[1], cores[-1][1]))
            cores.pop()
        cores.append(core)
    out: list[tuple[int, int, list[tuple[int, int]]]] = []
    for core in cores:
        lo, hi = max(0, core[0] - MARGIN), min(len(text), core[1] + MARGIN)
        if out and lo <= out[-1][1]:
            out[-1][2].append(core)  # in place: copying the list per core was quadratic on a dense page
            out[-1] = (out[-1][0], hi, out[-1][2])
        else:
            out.append((lo, hi, [core]))
    return [_cut_at_spaces(text, lo, hi, window_cores) for lo, hi, window_cores in out]


def _cut_at_spaces(
    text: str, lo: int, hi: int, cores: list[tuple[int, int]]
) -> tuple[int, int, list[tuple[int, int]]]:
    """The window's ends moved inwards to a space within its margins, so that no word is cut in two."""
    if lo > 0:
        cut = text.find(" ", lo, cores[0][0])
        lo = cut + 1 if cut >= 0 else lo
    if hi < len(text):
        cut = text.rfind(" ", cores[-1][1], hi)
        hi = cut if cut >= 0 else hi
    return lo, hi, cores


_REDACTORS: dict[tuple[str, bytes | None, str], object] = {}


def _redactor(policy: str, key: bytes | None, mask_char: str):
    """One Redactor (and its AnonymizerEngine) per worker and policy."""
    from pii.redact import Redactor

    cache_key = (policy, key, mask_char)
    if cache_key not in _REDACTORS:
        _REDACTORS[cache_key] = Redactor(policy, key, mask_char)
    return _REDACTORS[cache_key]


def redact_texts(texts: Sequence[str], settings: PiiSettings, key: bytes | None = None) -> list[dict]:
    """Redact plain strings (CLI and tests): text, spans and counts per input, all treated as kept rows."""
    batch = pa.RecordBatch.from_arrays([pa.array(list(texts), pa.string())], names=["text"])
    kernel = PiiKernel(settings, output_schema(batch.schema), key)
    out = kernel(batch).to_pylist()
    return [
        {
            "text": r["text"],
            "spans": r["pii_spans"],
            "counts": dict(r["pii_counts"] or []),
            "scope": r["pii_scope"],
        }
        for r in out
    ]
