"""Turn analyzer results into redacted text with presidio-anonymizer, and report spans without values.

Overlapping results are merged into one span covering their union first (a
partial overlap must not leave half a phone number behind); the merged span takes
the type, score and recognizer of its best result. Spans are reported in the
coordinates of the redacted text, so a reader can find the placeholder, never the
value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from presidio_analyzer import RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

RECOGNIZER_KEY = "recognizer_name"
PSEUDONYM_HEX = 10


@dataclass(frozen=True)
class Span:
    """One redacted entity: where its replacement sits in the redacted text (never the original value)."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str

    def as_dict(self) -> dict[str, object]:
        return {
            "entity_type": self.entity_type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "recognizer": self.recognizer,
        }


@dataclass(frozen=True)
class Redaction:
    """Redacted text, its spans, and each replacement as (old start, old end, new start, new end)."""

    text: str
    spans: list[Span]
    edits: list[tuple[int, int, int, int]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(Counter(s.entity_type for s in self.spans))

    def then(self, later: Redaction) -> Redaction:
        """This redaction followed by `later` (a redaction of this one's text): spans moved to the final text.

        A span that a later replacement covers is absorbed by it.
        """
        moved = []
        for span in self.spans:
            if any(lo < span.end and span.start < hi for lo, hi, _, _ in later.edits):
                continue
            shift = sum((ne - ns) - (hi - lo) for lo, hi, ns, ne in later.edits if hi <= span.start)
            moved.append(
                Span(span.entity_type, span.start + shift, span.end + shift, span.score, span.recognizer)
            )
        spans = sorted([*moved, *later.spans], key=lambda s: s.start)
        return Redaction(later.text, spans, later.edits)


def merge_overlaps(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Non-overlapping results sorted by start; overlapping ones become one span labelled by the best."""
    merged: list[RecognizerResult] = []
    for r in sorted(results, key=lambda r: (r.start, -r.end)):
        if merged and r.start < merged[-1].end:
            top = merged[-1]
            best = top if (top.score, top.end - top.start) >= (r.score, r.end - r.start) else r
            merged[-1] = RecognizerResult(
                best.entity_type,
                top.start,
                max(top.end, r.end),
                best.score,
                recognition_metadata=best.recognition_metadata,
            )
        else:
            merged.append(r)
    return merged


def propagate(
    text: str, results: list[RecognizerResult], entity_types: frozenset[str]
) -> list[RecognizerResult]:
    """Add every other occurrence of a found value of `entity_types` (NER types) in the same text.

    NER decides per context: "Shakespeare" tagged PERSON in one sentence may be missed
    two lines later. Once a document reveals a value as a name, all its occurrences go.
    """
    values = {
        text[r.start : r.end]: r for r in results if r.entity_type in entity_types and r.end - r.start > 2
    }
    if not values:
        return results
    taken = [(r.start, r.end) for r in results]
    extra = []
    for value, source in values.items():
        for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text):
            if not any(lo < m.end() and m.start() < hi for lo, hi in taken):
                taken.append(m.span())
                extra.append(
                    RecognizerResult(
                        source.entity_type,
                        m.start(),
                        m.end(),
                        source.score,
                        recognition_metadata={RECOGNIZER_KEY: "propagated"},
                    )
                )
    return [*results, *extra]


def pseudonym(key: bytes, scope: str, entity_type: str, value: str) -> str:
    """A stable stand-in for `value` within `scope` (a document id): keyed, so the value cannot be guessed back."""
    digest = hmac.new(key, f"{scope}\x1f{entity_type}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return f"<{entity_type}_{digest[:PSEUDONYM_HEX]}>"


class Redactor:
    """Applies one redaction policy; `redact` is called once per document."""

    def __init__(self, policy: str, key: bytes | None = None, mask_char: str = "*"):
        if policy == "pseudonym" and not key:
            raise ValueError(
                "the pseudonym policy needs a key (set the environment variable named by key_env)"
            )
        self.policy = policy
        self.key = key or b""
        self.mask_char = mask_char
        self.engine = AnonymizerEngine()

    def _operator(self, entity_type: str, scope: str) -> OperatorConfig:
        if self.policy == "mask":
            return OperatorConfig(
                "mask", {"masking_char": self.mask_char, "chars_to_mask": 1 << 30, "from_end": False}
            )
        if self.policy == "pseudonym":
            make: Callable[[str], str] = lambda value: pseudonym(self.key, scope, entity_type, value)  # noqa: E731
            return OperatorConfig("custom", {"lambda": make})
        return OperatorConfig("replace", {"new_value": f"<{entity_type}>"})

    def redact(self, text: str, results: list[RecognizerResult], scope: str = "") -> Redaction:
        """Redacted text and its spans; `scope` keeps pseudonyms consistent within one document."""
        # An empty result redacts nothing, and presidio-anonymizer drops one that touches a span
        # ("contained"), which would desynchronise its output from the merged spans.
        merged = merge_overlaps([r for r in results if r.end > r.start])
        if not merged:
            return Redaction(text, [])
        operators = {t: self._operator(t, scope) for t in {r.entity_type for r in merged}}
        done = self.engine.anonymize(
            text=text,
            analyzer_results=[AnonymizerResult(r.entity_type, r.start, r.end, r.score) for r in merged],
            operators=operators,
            merge_entities_with_spaces=False,  # merged above; keeps one output item per span
        )
        items = sorted(done.items, key=lambda item: item.start)
        if len(items) != len(merged):
            raise RuntimeError(f"anonymizer returned {len(items)} items for {len(merged)} merged spans")
        spans = [
            Span(
                r.entity_type,
                item.start,
                item.end,
                float(r.score),
                (r.recognition_metadata or {}).get(RECOGNIZER_KEY, ""),
            )
            for r, item in zip(merged, items, strict=True)
        ]
        edits = [(r.start, r.end, item.start, item.end) for r, item in zip(merged, items, strict=True)]
        return Redaction(done.text, spans, edits)
