"""The words every quality signal counts, split by the right tokenizer for the document's language.

Why datatrove's choices: the published filters (datatrove's Gopher, C4, FineWeb) and
FineWeb-2's per-language thresholds count words with the tokenizer datatrove 0.10.1's
`load_word_tokenizer` assigns to the language, so reproducing their decisions needs the
same split ("Frank," is two words there). Languages written without spaces get a real
segmenter (curation/segmenters.py: jieba, SudachiPy, PyThaiNLP, kiwi, pyvi, khmer-nltk,
laonlp, pyidaungsu, botok; PyPI packages that ship their dictionaries, except botok's dialect
pack); every other language gets spaCy's rule-based tokenizer (`spacy.blank`) for itself or,
where datatrove uses a related language's rules, for that one (`SPACY_PROXY`), and `xx` where
spaCy has none.

Why per whitespace chunk for spaCy: its tokenizer first cuts on whitespace and then applies
prefix/suffix/infix rules to each chunk independently, so tokenizing each distinct chunk once
and memoising the result gives exactly spaCy's words at dictionary-lookup speed (web text is
Zipfian; most chunks repeat). The segmenters look across spaces, so they take the whole text.

A language whose segmenter package is missing is an error (`require_segmenters`, called when
the annotate stage starts), never a silent fall back to another split.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable, Iterable
from functools import cache
from itertools import chain

import spacy

from curation.regex_cache import cached_compiles
from curation.segmenters import Segmenter, Split, regex_sentence_count, segmented_languages, segmenter_for
from curation.sentencizer import ODD_WHITESPACE, sentence_count, spaced_tokens

MAX_CACHED_CHUNKS = 500_000
# spaCy strips a chunk's prefixes and suffixes one at a time, searching the rest of the chunk each
# time, so a chunk costs about (leading or trailing affix characters) x (length): measured, a 5,000-character run of "{"
# took 3.8 s and 40,000 took 283 s (datatrove, which tokenizes the same way, stalls on such a page).
# A chunk over LONG_CHUNK characters whose leading or trailing run of non-word characters times its
# length passes AFFIX_WORK has those runs tokenized in pieces that keep within it (`_pieces`): linear,
# and chunks of natural text stay whole, split exactly as spaCy splits them.
LONG_CHUNK = 100
AFFIX_WORK = 30_000
_NON_WORD_RUN = re.compile(r"[\W_]+")
# Where datatrove 0.10.1's tokenizer assignment (assets/tokenizer_assignment.csv, looked up by
# language and script as FineWeb-2 does) gives a language another language's spaCy rules.
SPACY_PROXY = {
    **dict.fromkeys(("an", "ast", "co", "mwl", "oc", "sc"), "es"),
    **dict.fromkeys(("bar", "gsw"), "de"),
    **dict.fromkeys(("bcl", "ceb", "war"), "tl"),
    **dict.fromkeys(("bs", "hbs"), "sr"),
    **dict.fromkeys(("frr", "fy", "sco"), "en"),
    **dict.fromkeys(("ilo", "jv", "mg", "mi", "min", "pam", "su"), "ms"),
    **dict.fromkeys(("li", "nds", "vls"), "nl"),
    **dict.fromkeys(("lmo", "pms", "vec"), "lij"),
    **dict.fromkeys(("nap", "scn"), "it"),
    **dict.fromkeys(("rm", "wa"), "fr"),
    **dict.fromkeys(("sn", "st", "sw", "ts", "xh", "zu"), "tn"),
    **dict.fromkeys(("wuu", "yue"), "zh"),
    "arz": "ar", "azb": "fa", "ba": "tt", "nn": "nb", "pfl": "lb", "rue": "ru", "tk": "tr", "vep": "fi",
    # spaCy has these languages, but datatrove splits them with the multilingual rules.
    **dict.fromkeys(("az", "eo", "ia", "ie", "io", "so", "tg", "uz", "vo"), "xx"),
}  # fmt: skip
# Languages datatrove splits with spaCy's `xx` words and a punctuation rule for sentences.
REGEX_SENTENCE_LANGS = frozenset({"dv", "ka", "xmf", "yi"})


class SegmenterMissing(ImportError):
    """A language's segmenter cannot run here: the message names the package and the pip command."""


class ChunkTokenizer:
    """spaCy's tokenizer for one language, memoised per whitespace-delimited chunk.

    Unknown chunks are tokenized inside a spaCy memory zone, so the vocabulary
    does not grow with the corpus, and without lexical attributes (shape, etc.),
    which the split does not use and which cost more than the split itself.
    """

    def __init__(self, lang: str, spacy_lang: str | None = None, regex_sentences: bool = False):
        self.lang = lang
        self.regex_sentences = regex_sentences
        self._nlp = _blank(spacy_lang or lang)
        self._nlp.vocab.lex_attr_getters = {}
        self._cache: dict[str, tuple[str, ...]] = {}

    def _fill(self, chunks: set[str]) -> None:
        if len(self._cache) + len(chunks) > MAX_CACHED_CHUNKS:
            self._cache.clear()
        tokenize = self._nlp.tokenizer
        with self._nlp.memory_zone():
            for chunk in chunks:
                self._cache[chunk] = tuple(tok.text for piece in _pieces(chunk) for tok in tokenize(piece))

    def chunk(self, chunk: str) -> tuple[str, ...]:
        cached = self._cache.get(chunk)
        if cached is None:
            self._fill({chunk})
            cached = self._cache[chunk]
        return cached

    def words(self, text: str) -> list[str]:
        """Why one lookup per chunk and one flattening in C: on warm web text the split is dictionary
        hits, so the Python around them is the cost."""
        chunks = text.split()
        found = list(map(self._cache.get, chunks))
        if None in found:
            self._fill({c for c, toks in zip(chunks, found, strict=True) if toks is None})
            found = [
                toks if toks is not None else self.chunk(c) for c, toks in zip(chunks, found, strict=True)
            ]
        return list(chain.from_iterable(found))

    def sentence_count(self, line: str) -> int:
        """Sentences in a stripped line, as datatrove's tokenizer for the language counts them."""
        if self.regex_sentences:
            return regex_sentence_count(line)
        if ODD_WHITESPACE.search(line) is None:
            return sentence_count(self.words(line))
        return sentence_count(spaced_tokens(self.chunk, line))


def _pieces(chunk: str) -> list[str]:
    """`chunk` whole, or with its long leading and trailing runs of non-word characters cut off in pieces.

    Those runs are what spaCy peels one character at a time (see LONG_CHUNK); their pieces are all
    non-word characters, which spaCy splits alike whole or cut in all but a few cases ("...", a
    character that is no affix inside the run), and what lies between them keeps spaCy's split.
    """
    if len(chunk) <= LONG_CHUNK:
        return [chunk]
    lead = _NON_WORD_RUN.match(chunk)
    trail = _NON_WORD_RUN.match(chunk[::-1])
    lead_len, trail_len = (lead.end() if lead else 0), (trail.end() if trail else 0)
    if max(lead_len, trail_len) * len(chunk) <= AFFIX_WORK:
        return [chunk]
    if lead_len == len(chunk):
        return _cut(chunk)
    middle = chunk[lead_len : len(chunk) - trail_len]
    return [*_cut(chunk[:lead_len]), middle, *_cut(chunk[len(chunk) - trail_len :])]


def _cut(run: str) -> list[str]:
    step = math.isqrt(AFFIX_WORK)
    return [run[start : start + step] for start in range(0, len(run), step)]


def _blank(lang: str):
    """A blank spaCy pipeline for `lang`, or the multilingual one where spaCy does not know `lang`.

    Built with the compiled-regex cache: French's rules are otherwise ~2.3 s of compiling in every
    worker (curation/regex_cache.py).
    """
    with cached_compiles():
        try:
            return spacy.blank(lang)
        except ImportError:  # spaCy raises ImportError (E048) for a language it has no module for
            return spacy.blank("xx")


Tokenizer = ChunkTokenizer | Segmenter


def _segmenter(code: str) -> Segmenter | None:
    """The language's segmenter, or its proxy's (Cantonese and Wu are split as Chinese, with jieba)."""
    return segmenter_for(code) or segmenter_for(SPACY_PROXY.get(code, ""))


@cache
def word_tokenizer(lang: str | None) -> Tokenizer:
    """The tokenizer for an ISO 639 code (None: English, as datatrove's filters default to)."""
    code = (lang or "en").lower()
    segmenter = _segmenter(code)
    if segmenter is not None:
        return segmenter
    return ChunkTokenizer(code, SPACY_PROXY.get(code), code in REGEX_SENTENCE_LANGS)


def split_words(text: str, lang: str | None = None) -> list[str]:
    """The words of `text` in the split of `lang`'s tokenizer, whitespace dropped."""
    return word_tokenizer(lang).words(text)


def split_document(text: str, lang: str | None = None) -> Split:
    """`text`'s words in `lang`'s split and, where its segmenter's analysis gives them, its sentences."""
    tokenizer = word_tokenizer(lang)
    return tokenizer.split(text) if isinstance(tokenizer, Segmenter) else Split(tokenizer.words(text))


def splits_sentences(lang: str | None) -> bool:
    """Whether `split_document` gives `lang`'s documents their sentences."""
    tokenizer = word_tokenizer(lang)
    return isinstance(tokenizer, Segmenter) and tokenizer.splits_sentences


def words_for(lang: str | None) -> Callable[[str], list[str]]:
    """A function from text to its words in `lang` (the tokenizer loaded once, on first call)."""
    return word_tokenizer(lang).words


def tokenizer_name(lang: str) -> str:
    """What splits `lang`'s words, for docs and reports."""
    segmenter = _segmenter(lang)
    if segmenter is not None:
        return segmenter.name
    proxy = SPACY_PROXY.get(lang)
    return f"spaCy rules ({proxy})" if proxy else "spaCy rules"


def require_segmenters(languages: Iterable[str] | None = None, *, data: bool = True) -> None:
    """Fail, naming the package and the pip command, where a language's segmenter is not installed.

    `languages` None checks every segmented language. With `data`, also fail where a package
    lacks data it would download on first use (botok's dialect pack).
    """
    wanted = segmented_languages() if languages is None else sorted({code.lower() for code in languages})
    problems: list[str] = []
    for code in wanted:
        segmenter = _segmenter(code)
        if segmenter is None:
            continue
        missing = [p.pip for p in segmenter.packages if importlib.util.find_spec(p.module) is None]
        if missing:
            problems.append(
                f"{code}: {segmenter.name} needs {', '.join(missing)}: "
                f"pip install {' '.join(missing)} (or pip install 'refinery[multilingual]')"
            )
        elif data and (lack := segmenter.missing_data()):
            problems.append(f"{code}: {lack}")
    if problems:
        raise SegmenterMissing("word segmenters missing: " + "; ".join(problems))
