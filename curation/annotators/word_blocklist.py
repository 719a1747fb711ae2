"""Word blocklist from a user file: `blocked_word_count` counts whole-word, case-insensitive matches.

A count, not a flag, so that decide's `min_blocked_words` can ask for several.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule
from curation.blocklist import WordBlocklist

FIELD = pa.field("blocked_word_count", pa.int64())
RULE = declared_rule(
    "word_blocklist", FIELD.name, "ge", 1, means="text contains words from the word blocklist"
)


class WordBlocklistConfig(AnnotatorConfig):
    path: str = Field(description="file of blocked words or phrases, one per line (# comments)")


class WordBlocklistAnnotator(Annotator):
    """Counts blocked words and phrases in each document's text."""

    name = "word_blocklist"
    Config = WordBlocklistConfig
    columns = (FIELD,)
    rules = (RULE,)
    rule_rank = 20

    def __init__(self, config: WordBlocklistConfig):
        super().__init__(config)
        self.words = WordBlocklist.from_file(config.path)

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        return [self.words.array(ctx.texts())]
