"""FineWeb's quality signals (datatrove 0.10.1's FineWebQualityFilter): line punctuation, short and
repeated lines, and list-like text (newlines per word, over the document's word split).
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule, per_document
from curation.signals import TERMINAL_PUNCTUATION, duplicates, ratio

FIELDS: list[pa.Field] = [
    pa.field("fineweb_line_count", pa.int64()),
    pa.field("fineweb_line_punct_ratio", pa.float64()),
    pa.field("fineweb_short_line_ratio", pa.float64()),
    pa.field("fineweb_char_dup_ratio", pa.float64()),
    pa.field("fineweb_list_ratio", pa.float64()),
]
_r = declared_rule
_STOP = tuple(TERMINAL_PUNCTUATION)  # a line ending in one of these ends a sentence
RULES = [
    _r("fineweb_empty", "fineweb_line_count", "eq", 0, means="FineWeb: no non-blank line"),
    _r(
        "fineweb_line_punct_ratio",
        "fineweb_line_punct_ratio",
        "lt",
        0.12,
        means="FineWeb: too few lines end in terminal punctuation",
    ),
    _r(
        "fineweb_short_line_ratio",
        "fineweb_short_line_ratio",
        "gt",
        0.67,
        means="FineWeb: too many short lines",
    ),
    _r(
        "fineweb_char_dup_ratio",
        "fineweb_char_dup_ratio",
        "gt",
        0.01,
        means="FineWeb: too much text in repeated lines",
    ),
    _r(
        "fineweb_list_ratio",
        "fineweb_list_ratio",
        "gt",
        0.3,
        means="FineWeb: too many newlines per word (a list)",
    ),
]


class FineWebConfig(AnnotatorConfig):
    short_line_length: int = Field(30, description="lines of at most this many characters are short")


class FineWeb(Annotator):
    """FineWeb's line and list signals of each document."""

    name = "fineweb"
    Config = FineWebConfig
    columns = FIELDS
    presets = {"fineweb": RULES}
    rule_rank = 400
    uses_words = True

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        return per_document(
            ctx, FIELDS, lambda row: fineweb_signals(ctx.text(row), len(ctx.words(row)), self.config)
        )


def fineweb_signals(text: str, n_words: int, config: FineWebConfig) -> list[float | int | None]:
    """Line count, terminal-punctuation share, short-line share, duplicate-line characters, newlines per word."""
    lines = [line for line in text.split("\n") if line.strip() != ""]
    if not lines:
        return [0, None, None, None, None]
    punct = sum(1 for line in lines if line.endswith(_STOP)) / len(lines)
    short = sum(1 for line in lines if len(line) <= config.short_line_length) / len(lines)
    dup_chars = duplicates(lines)[1]
    return [
        len(lines),
        punct,
        short,
        ratio(dup_chars, len(text) - text.count("\n")),
        ratio(text.count("\n"), n_words),
    ]
