"""Heuristic quality signals per document: Gopher quality and repetition, C4 and FineWeb rules.

Each rule of the published filters becomes a numeric column (the RedPajama-v2
way), so thresholds are applied later by `decide` and can change without a
rescan. One pass per document shares the expensive parts: the word split (spaCy
rules, see `curation.words`), the line splits, and the n-gram ids that all
repetition signals use. Definitions follow datatrove 0.10.1's filters exactly,
so that the presets reproduce its decisions (docs/curation.md lists them all);
a signal whose denominator is zero is null ("not measurable"), never a failure.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import regex

from curation.words import split_words, word_tokenizer

# Characters that make a "symbol word" for Gopher (a word made only of these is not counted as a word):
# ASCII and CJK/typographic punctuation, the fullwidth digit one, C0/C1 control characters (not tab or
# newline) and every sentence terminal. This is datatrove's PUNCTUATION_SET, needed to match its counts.
SYMBOLS = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "—–”“„’´«»…►━∶"
    "、。「」【】《》〈〉（）？！：；，．％～１"
    + "".join(chr(c) for lo, hi in ((0, 9), (11, 32), (127, 160)) for c in range(lo, hi))
)
# Sentence terminals (Unicode Sentence_Terminal, plus three Khmer signs datatrove also lists): used for
# FineWeb's "line ends with terminal punctuation" rule and as symbol characters.
_STERM = regex.compile(r"\p{Sentence_Terminal}")
TERMINAL_PUNCTUATION = frozenset(
    {chr(c) for c in range(0x110000) if _STERM.match(chr(c))} | {"\u17d6", "\u17d9", "\u17da"}
)
SYMBOL_SET = frozenset(SYMBOLS) | TERMINAL_PUNCTUATION
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

# C4 (tensorflow-datasets c4_utils, as in datatrove's C4QualityFilter).
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

PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
LINE_SPLIT = re.compile(r"\n+")
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)


@dataclass(frozen=True)
class SignalParams:
    """Settings that change what a signal measures (thresholds live in `curation.rules`, not here)."""

    stop_words: tuple[str, ...] = GOPHER_STOP_WORDS
    c4_min_words_per_line: int = 3
    c4_max_word_length: int = 1000
    fineweb_short_line_length: int = 30
    fineweb_stop_chars: frozenset[str] = field(default=TERMINAL_PUNCTUATION)


_F = pa.float64()
_I = pa.int64()
SIGNAL_FIELDS: list[pa.Field] = [
    pa.field("char_count", _I),
    pa.field("word_count", _I),
    pa.field("gopher_word_count", _I),
    pa.field("gopher_mean_word_length", _F),
    pa.field("gopher_hash_word_ratio", _F),
    pa.field("gopher_ellipsis_word_ratio", _F),
    pa.field("gopher_bullet_lines_ratio", _F),
    pa.field("gopher_end_ellipsis_lines_ratio", _F),
    pa.field("gopher_alpha_words_ratio", _F),
    pa.field("gopher_stop_word_count", _I),
    pa.field("gopher_dup_para_frac", _F),
    pa.field("gopher_dup_para_char_frac", _F),
    pa.field("gopher_dup_line_frac", _F),
    pa.field("gopher_dup_line_char_frac", _F),
    *[pa.field(f"gopher_top_{n}_gram_char_frac", _F) for n in TOP_NGRAMS],
    *[pa.field(f"gopher_dup_{n}_gram_char_frac", _F) for n in DUP_NGRAMS],
    pa.field("c4_sentence_count", _I),
    pa.field("c4_lorem_ipsum", pa.bool_()),
    pa.field("c4_curly_bracket", pa.bool_()),
    pa.field("c4_kept_line_frac", _F),
    pa.field("fineweb_line_count", _I),
    pa.field("fineweb_line_punct_ratio", _F),
    pa.field("fineweb_short_line_ratio", _F),
    pa.field("fineweb_char_dup_ratio", _F),
    pa.field("fineweb_list_ratio", _F),
]
SIGNAL_NAMES = [f.name for f in SIGNAL_FIELDS]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def duplicates(items: Iterable[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them): every occurrence after the first counts."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _dense(keys: np.ndarray) -> np.ndarray:
    return np.unique(keys, return_inverse=True)[1].astype(np.int64)


def _greedy_duplicate_chars(ids: np.ndarray, window_chars: np.ndarray, n: int) -> int:
    """Characters in repeated n-grams, scanning left to right and jumping past each repeat (Gopher's rule).

    Positions before the first repeat are only ever added to the seen set, so the
    Python loop starts there.
    """
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    start = int(np.flatnonzero(first[inverse] < np.arange(len(ids)))[0])
    seen = set(ids[:start].tolist())
    id_list = ids.tolist()
    chars_list = window_chars.tolist()
    total, idx, end = 0, start, len(id_list)
    while idx < end:
        gram = id_list[idx]
        if gram in seen:
            total += chars_list[idx]
            idx += n
        else:
            seen.add(gram)
            idx += 1
    return total


def repetition_ngrams(words: list[str], text_len: int) -> list[float | None]:
    """Top 2-4-gram and duplicated 5-10-gram character fractions, from integer n-gram ids.

    An n-gram's id is the dense rank of (id of its (n-1)-gram prefix, id of its
    last word), so equal ids mean equal word sequences, exactly, for every n in
    one sort each. Top n-grams count characters with the separating spaces, the
    duplicated ones without (as Gopher's reference implementation does). Once no
    n-gram repeats, no longer one does either, so the remaining fractions are 0.
    """
    out: list[float | None] = []
    n_words = len(words)
    vocab: dict[str, int] = {}
    word_ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), np.int64, n_words)
    cum = np.concatenate(([0], np.cumsum(np.fromiter(map(len, words), np.int64, n_words))))
    grams = word_ids
    repeat_free = False
    for n in (*TOP_NGRAMS, *DUP_NGRAMS):
        count = n_words - n + 1
        if count <= 0 or repeat_free:
            out.append(None if n in TOP_NGRAMS else 0.0)
            continue
        grams = _dense(grams[:count] * (len(vocab) + 1) + word_ids[n - 1 :])
        window_chars = cum[n:] - cum[:count]
        counts = np.bincount(grams)
        top = int(counts.max())
        if n in TOP_NGRAMS:
            first_pos = int(np.flatnonzero(counts[grams] == top)[0])
            out.append(float((window_chars[first_pos] + n - 1) * top) / text_len)
        elif top < 2:
            repeat_free = True
            out.append(0.0)
        else:
            out.append(_greedy_duplicate_chars(grams, window_chars, n) / text_len)
    return out


def _sentence_count(tokens: Iterable[str], punct_chars: frozenset[str]) -> int:
    """Sentences spaCy's rule-based sentencizer finds in a line's tokens.

    A sentence starts at the first token and at every token that is neither
    punctuation nor a sentence-final character and follows one of those
    characters; the lines reaching here are stripped, so no sentence is blank.
    """
    count, seen_period = 0, False
    for tok in tokens:
        is_final = tok in punct_chars
        if count == 0:
            count = 1
        if seen_period and not is_final and not _is_punct(tok):
            count += 1
            seen_period = False
        elif is_final:
            seen_period = True
    return count


def _is_punct(token: str) -> bool:
    """spaCy's IS_PUNCT: every character is Unicode punctuation (category P*)."""
    return all(unicodedata.category(ch).startswith("P") for ch in token)


def c4_signals(text: str, params: SignalParams, lang: str | None) -> tuple[int, bool, bool, float | None]:
    """Sentences in the lines C4 keeps, whether a kept-candidate line has "lorem ipsum" or "{", kept-line share.

    Line order matters as in C4: too-long words, then terminal punctuation, then
    the word count, then lorem ipsum (document), javascript (line), curly bracket
    (document), policy phrases (line).
    """
    tokenizer = word_tokenizer(lang)
    punct = _sentencizer_punct()
    lines = text.splitlines()
    sentences, lorem, curly, kept = 0, False, False, 0
    for raw in lines:
        line = raw.strip()
        words = line.split()
        if params.c4_max_word_length != -1 and any(len(w) > params.c4_max_word_length for w in words):
            continue
        line = C4_CITATION.sub("", line)
        if not line.endswith(C4_END_PUNCTUATION) or line.endswith("..."):
            continue
        if len(words) < params.c4_min_words_per_line:
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
        sentences += _sentence_count(_spaced_tokens(tokenizer, line), punct)
        kept += 1
    return sentences, lorem, curly, _ratio(kept, len(lines))


ODD_WHITESPACE = re.compile(r"[^\S ]| {2}")


def _spaced_tokens(tokenizer, line: str) -> list[str]:
    """A line's spaCy tokens including the whitespace tokens the sentencizer sees between chunks.

    spaCy keeps any whitespace other than one plain space as a token of its own.
    """
    if ODD_WHITESPACE.search(line) is None:
        return tokenizer.words(line)
    out: list[str] = []
    for piece in re.split(r"( +|\s)", line):
        if not piece:
            continue
        if piece.isspace():
            if piece != " ":
                out.append(piece[1:] if piece.startswith(" ") else piece)
            continue
        out.extend(tokenizer.chunk(piece))
    return out


_PUNCT_CHARS: frozenset[str] | None = None


def _sentencizer_punct() -> frozenset[str]:
    global _PUNCT_CHARS
    if _PUNCT_CHARS is None:
        from spacy.pipeline.sentencizer import Sentencizer

        _PUNCT_CHARS = frozenset(Sentencizer.default_punct_chars)
    return _PUNCT_CHARS


def fineweb_signals(text: str, n_words: int, params: SignalParams) -> list[float | int | None]:
    """Line count, terminal-punctuation share, short-line share, duplicate-line characters, newlines per word."""
    lines = [line for line in text.split("\n") if line.strip() != ""]
    if not lines:
        return [0, None, None, None, None]
    stop = tuple(params.fineweb_stop_chars)
    punct = sum(1 for line in lines if line.endswith(stop)) / len(lines)
    short = sum(1 for line in lines if len(line) <= params.fineweb_short_line_length) / len(lines)
    dup_chars = duplicates(lines)[1]
    return [
        len(lines),
        punct,
        short,
        _ratio(dup_chars, len(text) - text.count("\n")),
        _ratio(text.count("\n"), n_words),
    ]


_WORD_FLAGS: dict[str, tuple[int, int, int]] = {}


def _word_flags(word: str) -> tuple[int, int, int]:
    """(1 if not only symbols, its length if so, 1 if it has a letter), memoised: words repeat."""
    flags = _WORD_FLAGS.get(word)
    if flags is None:
        if len(_WORD_FLAGS) > 1_000_000:
            _WORD_FLAGS.clear()
        kept = any(ch not in SYMBOL_SET for ch in word)
        flags = _WORD_FLAGS[word] = (int(kept), len(word) if kept else 0, int(any(c.isalpha() for c in word)))
    return flags


def gopher_quality(text: str, words: list[str], stop_words: frozenset[str]) -> list[float | int | None]:
    n_words = len(words)
    kept = kept_chars = alpha = 0
    for word in words:
        k, c, a = _WORD_FLAGS.get(word) or _word_flags(word)
        kept += k
        kept_chars += c
        alpha += a
    lines = text.splitlines()
    n_lines = len(lines)
    return [
        kept,
        (kept_chars / kept) if kept else None,
        _ratio(text.count("#"), n_words),
        _ratio(text.count("...") + text.count("…"), n_words),
        _ratio(sum(1 for s in lines if s.lstrip().startswith(("•", "-"))), n_lines),
        _ratio(sum(1 for s in lines if s.rstrip().endswith(("...", "…"))), n_lines),
        _ratio(alpha, n_words),
        len(stop_words.intersection(words)),
    ]


def gopher_repetition(text: str, words: list[str]) -> list[float | None]:
    text_len = len(text)
    if not text_len:
        return [None] * (4 + len(TOP_NGRAMS) + len(DUP_NGRAMS))
    paragraphs = PARAGRAPH_SPLIT.split(text.strip())
    para_dups, para_chars = duplicates(paragraphs)
    lines = LINE_SPLIT.split(text)
    line_dups, line_chars = duplicates(lines)
    return [
        para_dups / len(paragraphs),
        para_chars / text_len,
        line_dups / len(lines),
        line_chars / text_len,
        *repetition_ngrams(words, text_len),
    ]


def document_signals(text: str | None, lang: str | None, params: SignalParams) -> list:
    """Every signal of one document, in `SIGNAL_NAMES` order."""
    text = text or ""
    words = split_words(text, lang)
    stop_words = _stop_set(params.stop_words)
    return [
        len(text),
        len(words),
        *gopher_quality(text, words, stop_words),
        *gopher_repetition(text, words),
        *c4_signals(text, params, lang),
        *fineweb_signals(text, len(words), params),
    ]


_STOP_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def _stop_set(words: tuple[str, ...]) -> frozenset[str]:
    found = _STOP_SETS.get(words)
    if found is None:
        found = _STOP_SETS[words] = frozenset(words)
    return found


def signal_arrays(
    texts: list[str | None],
    langs: list[str | None],
    params: SignalParams,
    only: frozenset[str] | None = None,
) -> list[pa.Array]:
    """The signal columns for a batch, one Arrow array per `SIGNAL_FIELDS` entry.

    With `only`, documents of other languages get null signals without being
    scanned: when decide keeps only those languages, nothing would ever read them.
    """
    skipped = [None] * len(SIGNAL_FIELDS)
    rows = [
        document_signals(t, lang, params) if only is None or lang in only else skipped
        for t, lang in zip(texts, langs, strict=True)
    ]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SIGNAL_FIELDS)
    return [pa.array([_clean(v) for v in col], f.type) for col, f in zip(columns, SIGNAL_FIELDS, strict=True)]


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
