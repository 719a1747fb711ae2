"""C4's quality signals (tensorflow-datasets c4_utils, as datatrove 0.10.1's C4QualityFilter applies them).

C4 keeps or drops each line, then judges the document by what is left; the signals
record the outcome (sentences in kept lines, whether a candidate line had "lorem
ipsum" or "{", the kept-line share) so that decide applies the thresholds later.
Sentences are counted as datatrove counts them for the language: spaCy's rule-based
sentencizer, or the language's segmenter's own sentence split (curation/words.py), read
from the document's split where the segmenter made one (curation/sentence_spans.py).
"""

from __future__ import annotations

import re
from itertools import repeat

import pyarrow as pa
from pydantic import Field

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule, per_document
from curation.sentence_spans import SentenceSpans
from curation.signals import ratio
from curation.words import word_tokenizer

C4_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
C4_END_PUNCTUATION = (".", "?", "!", '"', "'")
C4_POLICY = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)

FIELDS: list[pa.Field] = [
    pa.field("c4_sentence_count", pa.int64()),
    pa.field("c4_lorem_ipsum", pa.bool_()),
    pa.field("c4_curly_bracket", pa.bool_()),
    pa.field("c4_kept_line_frac", pa.float64()),
]
RULES = [
    declared_rule("c4_lorem_ipsum", "c4_lorem_ipsum", "true", means='C4: contains "lorem ipsum"'),
    declared_rule("c4_curly_bracket", "c4_curly_bracket", "true", means='C4: contains "{" (likely code)'),
    declared_rule(
        "c4_too_few_sentences", "c4_sentence_count", "lt", 5, means="C4: too few sentences in kept lines"
    ),
]


class C4Config(AnnotatorConfig):
    min_words_per_line: int = Field(3, description="lines with fewer words are not kept")
    max_word_length: int = Field(1000, description="lines with a longer word are not kept (-1: no limit)")


class C4(Annotator):
    """C4's line rules applied to each document, as numbers and flags."""

    name = "c4"
    Config = C4Config
    columns = FIELDS
    presets = {"c4": RULES}
    rule_rank = 300

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        return per_document(
            ctx,
            FIELDS,
            lambda row: c4_signals(ctx.text(row), self.config, ctx.lang(row), ctx.sentences(row)),
        )


def c4_signals(
    text: str, config: C4Config, lang: str | None, spans: SentenceSpans | None = None
) -> tuple[int, bool, bool, float | None]:
    """Sentences in the lines C4 keeps, whether a kept-candidate line has "lorem ipsum" or "{", kept-line share.

    Line order matters as in C4: too-long words, then terminal punctuation, then
    the word count, then lorem ipsum (document), javascript (line), curly bracket
    (document), policy phrases (line). `spans`: the document's own sentences, where
    its segmenter gave them.
    """
    tokenizer = word_tokenizer(lang)
    lines = text.splitlines()
    sentences, lorem, curly, kept = 0, False, False, 0
    known = repeat(None) if spans is None else spans.line_counts(text)
    for raw, read in zip(lines, known, strict=False):  # `repeat` never ends
        stripped = raw.strip()
        words = stripped.split()
        too_long = config.max_word_length != -1 and len(stripped) > config.max_word_length  # else no word is
        if too_long and any(len(w) > config.max_word_length for w in words):
            continue
        line = C4_CITATION.sub("", stripped)
        if not line.endswith(C4_END_PUNCTUATION) or line.endswith("..."):
            continue
        if len(words) < config.min_words_per_line:
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            lorem = True
        if "javascript" in lower:
            continue
        if "{" in line:
            curly = True
        if any(p in lower for p in C4_POLICY):
            continue
        if read is not None and line == stripped:  # a citation cut changes the line's text
            sentences += max(1, read)
        else:
            sentences += _sentences(tokenizer, lang, line)
        kept += 1
    return sentences, lorem, curly, ratio(kept, len(lines))


MAX_CACHED_LINES = 200_000
_LINE_SENTENCES: dict[tuple[str | None, str], int] = {}


def _sentences(tokenizer, lang: str | None, line: str) -> int:
    """A kept line's sentence count (at least one, as datatrove counts it), memoised per language and line.

    Why: web text repeats lines (menus, footers, boilerplate) and, for Thai or Korean, the sentence
    splitter costs more than the rest of the document's signals; the count depends on the line alone.
    """
    key = (lang, line)
    found = _LINE_SENTENCES.get(key)
    if found is None:
        if len(_LINE_SENTENCES) >= MAX_CACHED_LINES:
            _LINE_SENTENCES.clear()
        found = _LINE_SENTENCES[key] = max(1, tokenizer.sentence_count(line))
    return found
