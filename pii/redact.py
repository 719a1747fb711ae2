"""Turn analyzer results into redacted text with presidio-anonymizer, and report spans without values.

Overlapping results are merged into one span covering their union first (a
partial overlap must not leave half a phone number behind); the merged span takes
the type, score and recognizer of its best result. Spans are reported in the
coordinates of the redacted text, so a reader can find the placeholder, never the
value.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate

from presidio_analyzer import RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

from pii.overlaps import Claims, SpanIndex

RECOGNIZER_KEY = "recognizer_name"
PSEUDONYM_HEX = 10
WORD_RUN = re.compile(r"\w+")
WORD_CHAR = re.compile(r"\w")
ANONYMIZE_SPANS = 64  # spans per presidio-anonymizer call (`_stretches`)


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
        replaced = SpanIndex((lo, hi) for lo, hi, _, _ in later.edits)
        by_end = sorted(later.edits, key=lambda edit: edit[1])
        ends = [hi for _, hi, _, _ in by_end]
        shifts = [0, *accumulate((ne - ns) - (hi - lo) for lo, hi, ns, ne in by_end)]
        moved = []
        for span in self.spans:  # indexes, not every span against every edit: quadratic on a dense page
            if replaced.overlaps(span.start, span.end):
                continue
            shift = shifts[bisect.bisect_right(ends, span.start)]  # the edits ending before the span
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
    occurrences = _occurrences(text, list(values))
    found = [(source, occurrences[value]) for value, source in values.items()]
    # Each occurrence is taken unless it overlaps a result or an occurrence taken before it (in
    # this order); indexes rather than a list of everything taken, which was quadratic.
    results_index = SpanIndex((r.start, r.end) for r in results)
    claims = Claims(bound for _, spans in found for span in spans for bound in span)
    extra = []
    for source, spans in found:
        for start, end in spans:
            if not results_index.overlaps(start, end) and not claims.overlaps(start, end):
                claims.claim(start, end)
                extra.append(
                    RecognizerResult(
                        source.entity_type,
                        start,
                        end,
                        source.score,
                        recognition_metadata={RECOGNIZER_KEY: "propagated"},
                    )
                )
    return [*results, *extra]


def _occurrences(text: str, values: list[str]) -> dict[str, list[tuple[int, int]]]:
    r"""Each value's spans as `re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text)` finds them
    (left to right, not overlapping each other), from one pass over the text's words.

    Why: one regex pass per value was O(values x text), and a long page has thousands of
    names. A value that begins with a word character can only occur where a word of the
    text begins, and that word is the value's first word (the lookbehind and what follows
    the word in the value both end it), so values are looked up by the text's words. The
    rare value that begins otherwise ("(Bob") is searched for on its own.
    """
    out: dict[str, list[tuple[int, int]]] = {}
    by_first_word: dict[str, list[str]] = {}
    for value in values:
        first = WORD_RUN.match(value)
        if first:
            out[value] = []
            by_first_word.setdefault(first.group(), []).append(value)
        else:
            out[value] = [m.span() for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text)]
    if not by_first_word:
        return out
    for word in WORD_RUN.finditer(text):
        for value in by_first_word.get(word.group(), ()):
            start, end = word.start(), word.start() + len(value)
            spans = out[value]
            after_last = not spans or start >= spans[-1][1]  # finditer goes on after its last match
            if after_last and text.startswith(value, start) and not WORD_CHAR.match(text, end):
                spans.append((start, end))
    return out


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
        pieces: list[str] = []
        spans: list[Span] = []
        edits: list[tuple[int, int, int, int]] = []
        out_at = 0  # where the stretch's redacted piece starts in the redacted text
        for lo, hi, group in _stretches(len(text), merged):
            piece, items = self._anonymize(text[lo:hi], group, lo, operators)
            for r, item in zip(group, items, strict=True):
                recognizer = (r.recognition_metadata or {}).get(RECOGNIZER_KEY, "")
                start, end = out_at + item.start, out_at + item.end
                spans.append(Span(r.entity_type, start, end, float(r.score), recognizer))
                edits.append((r.start, r.end, start, end))
            pieces.append(piece)
            out_at += len(piece)
        return Redaction("".join(pieces), spans, edits)

    def _anonymize(
        self, piece: str, group: list[RecognizerResult], offset: int, operators: dict[str, OperatorConfig]
    ) -> tuple[str, list]:
        """presidio-anonymizer on one stretch of text (`offset` in the document): its text and items."""
        done = self.engine.anonymize(
            text=piece,
            analyzer_results=[
                AnonymizerResult(r.entity_type, r.start - offset, r.end - offset, r.score) for r in group
            ],
            operators=operators,
            merge_entities_with_spaces=False,  # merged above; keeps one output item per span
        )
        items = sorted(done.items, key=lambda item: item.start)
        if len(items) != len(group):
            raise RuntimeError(f"anonymizer returned {len(items)} items for {len(group)} merged spans")
        return done.text, items


def _stretches(length: int, merged: list[RecognizerResult]) -> Iterator[tuple[int, int, list]]:
    """The merged (sorted, disjoint) spans in groups of ANONYMIZE_SPANS, each with the stretch of text
    [lo, hi) that holds it: cut after a group's last span, the last stretch to the end of the text.

    Why: presidio-anonymizer rebuilds the whole text it is given for every span (a slice
    and a concatenation each), quadratic on a dense page: a 5 MB line with 150,000
    addresses would copy terabytes. Given stretches of a few dozen spans, it does the same
    replacements, and the pieces are joined once.
    """
    lo = 0
    for first in range(0, len(merged), ANONYMIZE_SPANS):
        group = merged[first : first + ANONYMIZE_SPANS]
        hi = group[-1].end if first + ANONYMIZE_SPANS < len(merged) else length
        yield lo, hi, group
        lo = hi
