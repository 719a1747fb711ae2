"""Word blocklist from user files: `blocked_word_count` counts case-insensitive matches of listed words.

A count, not a flag, so that decide's `min_blocked_words` can ask for several. A list can be
given per language (`languages: {de: de.txt}`): a document is checked against its own
language's list, and against `path`'s list where its language has none. Entries match as whole
words, except in Chinese, Japanese and Thai, written without spaces, where they match anywhere
in the text (as datatrove's C4BadWordsFilter does: a "word" there has no boundary to find).
"""

from __future__ import annotations

import re

import pyarrow as pa
from pydantic import Field, model_validator

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule
from curation.blocklist import WordBlocklist, read_list

FIELD = pa.field("blocked_word_count", pa.int64())
RULE = declared_rule(
    "word_blocklist", FIELD.name, "ge", 1, means="text contains words from the word blocklist"
)
SUBSTRING_LANGS = frozenset({"zh", "ja", "th"})


class WordBlocklistConfig(AnnotatorConfig):
    path: str | None = Field(None, description="blocked words or phrases, one per line (# comments)")
    languages: dict[str, str] = Field(
        default_factory=dict,
        description="language -> its own list file, used instead of `path` for documents in that language",
    )

    @model_validator(mode="after")
    def _some_list(self) -> WordBlocklistConfig:
        if self.path is None and not self.languages:
            raise ValueError("path: Field required (or languages: {code: file})")
        return self


def language_blocklist(path: str, lang: str | None) -> WordBlocklist:
    """The list at `path`, matched as `lang` needs: whole words, or anywhere for unspaced scripts."""
    if lang not in SUBSTRING_LANGS:
        return WordBlocklist.from_file(path)
    words = sorted(set(read_list(path)), key=len, reverse=True)
    if not words:
        raise ValueError(f"word blocklist {path} has no entries")
    return WordBlocklist(re.compile("|".join(map(re.escape, words)), re.IGNORECASE))


class WordBlocklistAnnotator(Annotator):
    """Counts blocked words and phrases in each document's text, with its language's list."""

    name = "word_blocklist"
    Config = WordBlocklistConfig
    columns = (FIELD,)
    rules = (RULE,)
    rule_rank = 20

    def __init__(self, config: WordBlocklistConfig):
        super().__init__(config)
        self.words = WordBlocklist.from_file(config.path) if config.path else None
        self.by_language = {
            code.lower(): language_blocklist(path, code.lower()) for code, path in config.languages.items()
        }
        self._unspaced = (
            {code: language_blocklist(config.path, code) for code in SUBSTRING_LANGS} if config.path else {}
        )

    def blocklist_for(self, lang: str | None) -> WordBlocklist | None:
        return self.by_language.get(lang or "") or self._unspaced.get(lang or "") or self.words

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        if not self.by_language and not ctx.langs and self.words is not None:
            return [self.words.array(ctx.texts())]
        counts = []
        for row, text in enumerate(ctx.texts()):
            blocklist = self.blocklist_for(ctx.lang(row))
            counts.append(blocklist.count(text) if blocklist is not None else 0)
        return [pa.array(counts, pa.int64())]
