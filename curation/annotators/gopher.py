"""Gopher's quality and repetition signals (the MassiveText rules, as datatrove 0.10.1 implements them).

One annotator for both halves, because they share the document's word split: the
quality half counts words, symbol words and line shapes; the repetition half the
repeated paragraphs, lines and word n-grams, from integer n-gram ids (one sort per
n). `char_count` and `word_count` live here too (`gopher_empty` reads the first).
Presets: `gopher` = `gopher_quality` + `gopher_repetition`, in datatrove's order. Stop words are the
document's language's (curation/thresholds: FineWeb-2's lists; English keeps Gopher's eight).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
from pydantic import Field

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule, per_document
from curation.signals import SYMBOL_SET, duplicates, ratio
from curation.thresholds import DEFAULT_TABLE, language_table

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
LINE_SPLIT = re.compile(r"\n+")
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

_F = pa.float64()
_I = pa.int64()
FIELDS: list[pa.Field] = [
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
]

_r = declared_rule
QUALITY = [
    _r("gopher_short_doc", "gopher_word_count", "lt", 50, means="Gopher: too few words"),
    _r("gopher_long_doc", "gopher_word_count", "gt", 100_000, means="Gopher: too many words"),
    _r("gopher_below_avg_threshold", "gopher_mean_word_length", "lt", 3, means="Gopher: mean word too short"),
    _r("gopher_above_avg_threshold", "gopher_mean_word_length", "gt", 10, means="Gopher: mean word too long"),
    _r("gopher_too_many_hashes", "gopher_hash_word_ratio", "gt", 0.1, means="Gopher: too many '#' per word"),
    _r(
        "gopher_too_many_ellipsis",
        "gopher_ellipsis_word_ratio",
        "gt",
        0.1,
        means="Gopher: too many ellipses per word",
    ),
    _r(
        "gopher_too_many_bullets", "gopher_bullet_lines_ratio", "gt", 0.9, means="Gopher: mostly bullet lines"
    ),
    _r(
        "gopher_too_many_end_ellipsis",
        "gopher_end_ellipsis_lines_ratio",
        "gt",
        0.3,
        means="Gopher: too many lines ending in an ellipsis",
    ),
    _r(
        "gopher_below_alpha_threshold",
        "gopher_alpha_words_ratio",
        "lt",
        0.8,
        means="Gopher: too few words with a letter",
    ),
    _r("gopher_enough_stop_words", "gopher_stop_word_count", "lt", 2, means="Gopher: too few stop words"),
]
REPETITION = [
    _r("gopher_empty", "char_count", "eq", 0, means="Gopher: empty text"),
    _r(
        "gopher_dup_para_frac",
        "gopher_dup_para_frac",
        "gt",
        0.3,
        means="Gopher: too many repeated paragraphs",
    ),
    _r(
        "gopher_dup_para_char_frac",
        "gopher_dup_para_char_frac",
        "gt",
        0.2,
        means="Gopher: too much text in repeated paragraphs",
    ),
    _r("gopher_dup_line_frac", "gopher_dup_line_frac", "gt", 0.3, means="Gopher: too many repeated lines"),
    _r(
        "gopher_dup_line_char_frac",
        "gopher_dup_line_char_frac",
        "gt",
        0.2,
        means="Gopher: too much text in repeated lines",
    ),
    *[
        _r(
            f"gopher_top_{n}_gram",
            f"gopher_top_{n}_gram_char_frac",
            "gt",
            frac,
            means=f"Gopher: the most frequent word {n}-gram covers too much text",
        )
        for n, frac in ((2, 0.2), (3, 0.18), (4, 0.16))
    ],
    *[
        _r(
            f"gopher_duplicated_{n}_n_grams",
            f"gopher_dup_{n}_gram_char_frac",
            "gt",
            frac,
            means=f"Gopher: too much text in repeated word {n}-grams",
        )
        for n, frac in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    ],
]


class GopherConfig(AnnotatorConfig):
    stop_words: list[str] | None = Field(
        None,
        description="words counted by gopher_stop_word_count, for every language (null: the row's language's "
        "list from `language_stop_words`, Gopher's English eight for languages it does not list)",
    )
    language_stop_words: str | None = Field(
        DEFAULT_TABLE,
        description="table of per-language stop words: packaged (fineweb2) or a YAML file (null: Gopher's "
        "English eight for every language)",
    )


class Gopher(Annotator):
    """Gopher quality and repetition signals of each document, over its language's word split."""

    name = "gopher"
    Config = GopherConfig
    columns = FIELDS
    presets = {"gopher": QUALITY + REPETITION, "gopher_quality": QUALITY, "gopher_repetition": REPETITION}
    rule_rank = 200
    uses_words = True

    def __init__(self, config: GopherConfig | None = None):
        super().__init__(config)
        cfg: GopherConfig = self.config
        self.stop_words = frozenset(cfg.stop_words if cfg.stop_words is not None else GOPHER_STOP_WORDS)
        self._table = (
            language_table(cfg.language_stop_words)
            if cfg.stop_words is None and cfg.language_stop_words is not None
            else None
        )
        self._by_language: dict[str | None, frozenset[str]] = {}

    def stop_words_for(self, lang: str | None) -> frozenset[str]:
        """The stop words counted for a document in `lang` (the configured list, or the language's own)."""
        found = self._by_language.get(lang)
        if found is None:
            listed = self._table.stop_words(lang) if self._table is not None else None
            found = self._by_language[lang] = listed if listed is not None else self.stop_words
        return found

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        return per_document(
            ctx, FIELDS, lambda row: self.measure(ctx.text(row), ctx.words(row), ctx.lang(row))
        )

    def measure(self, text: str, words: list[str], lang: str | None = None) -> list:
        """Every signal of one document, in `FIELDS` order."""
        return [
            len(text),
            len(words),
            *gopher_quality(text, words, self.stop_words_for(lang)),
            *gopher_repetition(text, words),
        ]


def _dense(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids of `keys`, and at each position whether its key occurred before (from the same sort)."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return inverse.astype(np.int64), first[inverse] < np.arange(len(keys))


def _greedy_duplicate_chars(ids: np.ndarray, repeated: np.ndarray, window_chars: np.ndarray, n: int) -> int:
    """Characters in repeated n-grams, scanning left to right and jumping past each repeat (Gopher's rule).

    Why only the repeats are visited in Python: a position holding its n-gram's first occurrence
    in the document is never in the seen set, so the scan just adds it; the runs of such
    positions between two repeats are added in one `set.update`, and only the repeats (usually
    few) take a step of the loop. Positions after the last repeat add nothing to the total.
    """
    repeats = np.flatnonzero(repeated).tolist()
    id_list = ids.tolist()
    chars_list = window_chars.tolist()
    seen: set[int] = set()
    total = idx = 0
    for pos in repeats:
        if pos < idx:  # jumped over by an earlier repeat
            continue
        seen.update(id_list[idx:pos])
        gram = id_list[pos]
        if gram in seen:
            total += chars_list[pos]
            idx = pos + n
        else:
            seen.add(gram)
            idx = pos + 1
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
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # ids in order of first appearance
    word_ids = np.array(list(map(vocab.__getitem__, words)), np.int64)
    cum = np.concatenate(([0], np.cumsum(np.fromiter(map(len, words), np.int64, n_words))))
    grams = word_ids
    repeat_free = False
    for n in (*TOP_NGRAMS, *DUP_NGRAMS):
        count = n_words - n + 1
        if count <= 0 or repeat_free:
            out.append(None if n in TOP_NGRAMS else 0.0)
            continue
        grams, repeated = _dense(grams[:count] * (len(vocab) + 1) + word_ids[n - 1 :])
        window_chars = cum[n:] - cum[:count]
        if n in TOP_NGRAMS:
            counts = np.bincount(grams)
            top = int(counts.max())
            first_pos = int(np.flatnonzero(counts[grams] == top)[0])
            out.append(float((window_chars[first_pos] + n - 1) * top) / text_len)
        elif not repeated.any():
            repeat_free = True
            out.append(0.0)
        else:
            out.append(_greedy_duplicate_chars(grams, repeated, window_chars, n) / text_len)
    return out


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
    for word, times in Counter(words).items():  # each distinct word once: web text repeats its words
        k, c, a = _WORD_FLAGS.get(word) or _word_flags(word)
        kept += k * times
        kept_chars += c * times
        alpha += a * times
    lines = text.splitlines()
    n_lines = len(lines)
    return [
        kept,
        (kept_chars / kept) if kept else None,
        ratio(text.count("#"), n_words),
        ratio(text.count("...") + text.count("…"), n_words),
        ratio(sum(1 for s in lines if s.lstrip().startswith(("•", "-"))), n_lines),
        ratio(sum(1 for s in lines if s.rstrip().endswith(("...", "…"))), n_lines),
        ratio(alpha, n_words),
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
