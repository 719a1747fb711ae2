"""Word splitting shared by every quality signal, right for languages with and without spaces.

Why spaCy, and why per whitespace chunk: the published filters (datatrove's Gopher,
FineWeb) count words with spaCy's rule-based tokenizer (`spacy.blank(lang)`), so
reproducing their decisions needs the same split ("Frank," is two words there).
spaCy's tokenizer first cuts on whitespace and then applies prefix/suffix/infix
rules to each chunk independently, so tokenizing each distinct chunk once and
memoising the result gives exactly spaCy's words (whitespace tokens dropped) at
dictionary-lookup speed: web text is Zipfian and most chunks repeat.

Languages without spaces: datatrove segments them with jieba (zh), SudachiPy (ja),
PyThaiNLP (th), mecab-ko/kiwi (ko), pyvi (vi) and others, none of which is installed
here or works without downloads. So for those languages each character of an
unspaced script (Han, Kana, Thai, Lao, Khmer, Myanmar, Tibetan) counts as one word,
as spaCy's own offline Chinese "char" segmenter does, and Latin runs inside them
still go through spaCy's multilingual (`xx`) rules, so "OK" stays one word.
Languages spaCy does not know at all fall back to `xx`.
"""

from __future__ import annotations

import re
from functools import cache

import spacy

MAX_CACHED_CHUNKS = 500_000
# Scripts written without spaces between words: Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan.
UNSPACED_SCRIPT = re.compile(
    r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
    r"\u0e00-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f\u0f00-\u0fff]"
)
# Languages whose spaCy tokenizer needs a package we do not have: split their script per character.
CHARACTER_SPLIT_LANGS = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo"})


class ChunkTokenizer:
    """spaCy's tokenizer for one language, memoised per whitespace-delimited chunk.

    Unknown chunks are tokenized inside a spaCy memory zone, so the vocabulary
    does not grow with the corpus, and without lexical attributes (shape, etc.),
    which the split does not use and which cost more than the split itself.
    """

    def __init__(self, lang: str):
        self.lang = lang
        self._nlp = _blank(lang)
        self._nlp.vocab.lex_attr_getters = {}
        self._cache: dict[str, tuple[str, ...]] = {}

    def _fill(self, chunks: set[str]) -> None:
        if len(self._cache) + len(chunks) > MAX_CACHED_CHUNKS:
            self._cache.clear()
        tokenize = self._nlp.tokenizer
        with self._nlp.memory_zone():
            for chunk in chunks:
                self._cache[chunk] = tuple(tok.text for tok in tokenize(chunk))

    def chunk(self, chunk: str) -> tuple[str, ...]:
        cached = self._cache.get(chunk)
        if cached is None:
            self._fill({chunk})
            cached = self._cache[chunk]
        return cached

    def words(self, text: str) -> list[str]:
        chunks = text.split()
        cache = self._cache
        missing = {c for c in chunks if c not in cache}
        if missing:
            self._fill(missing)
            cache = self._cache
        out: list[str] = []
        for chunk in chunks:
            toks = cache.get(chunk) or self.chunk(chunk)
            if len(toks) == 1:
                out.append(toks[0])
            else:
                out.extend(toks)
        return out


def _blank(lang: str):
    """A blank spaCy pipeline for `lang`, or the multilingual one where spaCy needs missing packages.

    Korean and Vietnamese tokenizers fail only when first used (mecab-ko, pyvi), hence the probe.
    """
    if lang in CHARACTER_SPLIT_LANGS:
        return spacy.blank("xx")
    try:
        nlp = spacy.blank(lang)
        nlp.tokenizer("probe")
    except Exception:  # noqa: BLE001 - any failure means "no offline tokenizer for this language"
        return spacy.blank("xx")
    return nlp


class CharacterScriptTokenizer(ChunkTokenizer):
    """Unspaced scripts one character per word; other runs through spaCy's multilingual rules."""

    def words(self, text: str) -> list[str]:
        out: list[str] = []
        for chunk in text.split():
            if UNSPACED_SCRIPT.search(chunk) is None:
                out.extend(self.chunk(chunk))
                continue
            last = 0
            for match in UNSPACED_SCRIPT.finditer(chunk):
                if match.start() > last:
                    out.extend(self.chunk(chunk[last : match.start()]))
                out.append(match.group())
                last = match.end()
            if last < len(chunk):
                out.extend(self.chunk(chunk[last:]))
        return out


@cache
def word_tokenizer(lang: str | None) -> ChunkTokenizer:
    """The tokenizer for an ISO 639-1 code (None or unknown: English, as datatrove's filters default to)."""
    code = (lang or "en").lower()
    if code in CHARACTER_SPLIT_LANGS:
        return CharacterScriptTokenizer(code)
    return ChunkTokenizer(code)


def split_words(text: str, lang: str | None = None) -> list[str]:
    """The words of `text` as spaCy's tokenizer for `lang` splits them, whitespace dropped."""
    return word_tokenizer(lang).words(text)
