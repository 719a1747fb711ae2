"""Word segmenters for languages written without spaces between words, as datatrove 0.10.1 assigns them.

Why these and not one per character: FineWeb-2's per-language thresholds (curation/thresholds)
were fitted on words from these segmenters (datatrove's `load_word_tokenizer`), so the Gopher
and FineWeb signals must count the same words for the cut-offs to mean anything. Every one of
them is a PyPI package that ships its dictionary or model (the `multilingual` extra), except
botok, whose dialect pack is fetched on first use; without it Tibetan fails when the stage starts.

Each segmenter tokenizes the whole text (their models look across spaces and punctuation, so
a per-chunk memo would not be exact) and gives the words and, for C4, the sentence count of a
line, both as datatrove's tokenizer for the language gives them: tokens stripped, blank ones
dropped. Objects load their models on first use, in the worker that needs them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import regex

from curation.sentence_spans import SentenceSpans
from curation.sentencizer import sentence_count, with_gaps
from curation.signals import TERMINAL_PUNCTUATION
from curation.thai_sentences import sentence_count as thai_sentence_count

JA_MAX_BYTES = 40_000  # SudachiPy refuses inputs of about 49 KB; datatrove cuts Japanese at 40,000 bytes
KO_LONG_NUMBER = re.compile("[0-9,]{20,}")  # kiwi mis-handles very long digit runs (datatrove drops them too)
# A sentence for scripts without a sentence splitter: up to terminal punctuation or a newline, not
# cutting after a capital's initial ("J. Smith"), with a closing quote kept (datatrove's regex rule).
_REGEX_SENTENCE = regex.compile(
    rf"(?:(?:\p{{Lu}}\.)|.)+?[{re.escape(''.join(sorted(TERMINAL_PUNCTUATION)))}\n]+[\"'”]?"
)


def stripped(tokens) -> list[str]:
    """Tokens stripped of surrounding whitespace, blank ones dropped (datatrove's word lists)."""
    return [s for s in (t.strip() for t in tokens) if s]


def regex_sentence_count(line: str) -> int:
    return len(stripped(_REGEX_SENTENCE.findall(line)))


@dataclass(frozen=True)
class Package:
    """A segmenter's pip distribution and the module that proves it is installed."""

    pip: str
    module: str


@dataclass(frozen=True)
class Split:
    """A document's words and, where the segmenter's one analysis of it also splits it into
    sentences, those sentences (curation/sentence_spans.py says what they are used for)."""

    words: list[str]
    sentences: SentenceSpans | None = None


class Segmenter:
    """One language's segmenter: `words` of a text and `sentence_count` of a line (as datatrove's
    sentence spans count them: its sentence splitter's pieces; C4 counts a kept line as at least one)."""

    name: str = ""
    packages: tuple[Package, ...] = ()
    splits_sentences = False  # whether `split` gives the document's sentences too

    def words(self, text: str) -> list[str]:
        raise NotImplementedError

    def split(self, text: str) -> Split:
        return Split(self.words(text))

    def sentence_count(self, line: str) -> int:
        raise NotImplementedError

    def missing_data(self) -> str | None:
        """What the installed packages still lack to run offline (None: nothing)."""
        return None


class SpacyTokenizerWords(Segmenter):
    """spaCy's own tokenizer for zh (jieba) or vi (pyvi), its segments taken before spaCy builds a Doc.

    Why not the Doc: building it (a lexeme per new word) costs more than the segmentation, and its
    tokens are the segments plus the gaps between them, which `with_gaps` rebuilds for the sentencizer.
    """

    lang = ""

    @cached_property
    def _tokenizer(self):
        import spacy

        return spacy.blank(self.lang, config=self.config()).tokenizer

    def config(self) -> dict[str, Any]:
        return {}

    def segments(self, text: str) -> list[str]:
        raise NotImplementedError

    def _pieces(self, text: str) -> list[str]:
        return [w for w in self.segments(text) if w and not w.isspace()]

    def words(self, text: str) -> list[str]:
        return stripped(self._pieces(text))

    def sentence_count(self, line: str) -> int:
        return sentence_count(with_gaps(self._pieces(line), line))


class Chinese(SpacyTokenizerWords):
    name = "jieba (as spaCy's zh tokenizer)"
    packages = (Package("jieba", "jieba"),)
    lang = "zh"

    @cached_property
    def _tokenizer(self):
        import jieba

        jieba.setLogLevel(logging.WARNING)  # its dictionary-cache lines on stderr cut through a progress bar
        return super()._tokenizer

    def config(self) -> dict[str, Any]:
        return {"nlp": {"tokenizer": {"segmenter": "jieba"}}}

    def segments(self, text: str) -> list[str]:
        return list(self._tokenizer.jieba_seg.cut(text, cut_all=False))


class Vietnamese(SpacyTokenizerWords):
    name = "pyvi (as spaCy's vi tokenizer)"
    packages = (Package("pyvi", "pyvi"),)
    lang = "vi"

    def segments(self, text: str) -> list[str]:
        return self._tokenizer.pyvi_tokenize(text) if text else []


class Sudachi(Segmenter):
    """Japanese: SudachiPy split mode A (spaCy's default for Japanese) over the core dictionary."""

    name = "SudachiPy + sudachidict-core (mode A)"
    packages = (Package("sudachipy", "sudachipy"), Package("sudachidict-core", "sudachidict_core"))

    @cached_property
    def _tokenizer(self):
        from sudachipy import Dictionary, SplitMode

        return Dictionary().tokenizer(mode=SplitMode.A)

    def _surfaces(self, text: str) -> list[str]:
        out: list[str] = []
        for piece in byte_pieces(text, JA_MAX_BYTES):
            out.extend(m.surface() for m in self._tokenizer.tokenize(piece))
        return [s for s in out if s and not s.isspace()]

    def words(self, text: str) -> list[str]:
        return stripped(self._surfaces(text))

    def sentence_count(self, line: str) -> int:
        return sentence_count(with_gaps(self._surfaces(line), line))


def byte_pieces(text: str, max_bytes: int) -> list[str]:
    """`text` cut into pieces of at most `max_bytes` UTF-8 bytes, at a newline where one is near."""
    pieces: list[str] = []
    while len(text.encode("utf-8")) > max_bytes:
        cut = len(text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore"))
        newline = text.rfind("\n", 0, cut)
        cut = newline + 1 if newline > cut // 2 else cut
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text] if text else pieces


class Thai(Segmenter):
    name = "PyThaiNLP (newmm-safe words, crfcut sentences)"
    packages = (Package("pythainlp", "pythainlp"),)

    def words(self, text: str) -> list[str]:
        from pythainlp.tokenize import word_tokenize

        return stripped(word_tokenize(text, keep_whitespace=False, engine="newmm-safe"))

    def sentence_count(self, line: str) -> int:
        return thai_sentence_count(line)


class Korean(Segmenter):
    """Kiwi with the skip-bigram model datatrove asks for (kiwipiepy-model below 0.22 ships it).

    Why the document's analysis also gives its sentences: kiwi splits sentences from the same
    analysis that gives the tokens (`split_sents` only groups the tokens by their sentence), and
    C4 reads a line's count from that split where it can stand for the line's own
    (curation/sentence_spans.py), sparing a second analysis of most lines. Other lines are
    analysed alone, as datatrove does: one pass over everything is not exact (on 76 Korean lingua
    documents the words of the lines analysed one by one differ from the document's in 5).
    """

    name = "kiwipiepy + kiwipiepy-model (sbg)"
    packages = (Package("kiwipiepy", "kiwipiepy"), Package("kiwipiepy-model", "kiwipiepy_model"))
    splits_sentences = True

    @cached_property
    def _kiwi(self):
        from kiwipiepy import Kiwi

        return Kiwi(model_type="sbg")

    def split(self, text: str) -> Split:
        """Words as datatrove's kiwi tokenizer gives them; sentences only where datatrove's cleaning
        left the text as it was (the offsets must be the text's own)."""
        clean = KO_LONG_NUMBER.sub("", text)
        sentences = self._kiwi.tokenize(clean, split_sents=True)
        words = stripped(clean[t.start : t.end] for sentence in sentences for t in sentence)
        if clean != text:
            return Split(words)
        return Split(words, SentenceSpans((sentence[0].start, sentence[-1].end) for sentence in sentences))

    def words(self, text: str) -> list[str]:
        return self.split(text).words

    def sentence_count(self, line: str) -> int:
        return len(self._kiwi.split_into_sents(KO_LONG_NUMBER.sub("", line)))


class Khmer(Segmenter):
    name = "khmer-nltk"
    packages = (Package("khmer-nltk", "khmernltk"),)

    def words(self, text: str) -> list[str]:
        from khmernltk import word_tokenize

        return stripped(word_tokenize(text, return_tokens=True))

    def sentence_count(self, line: str) -> int:
        from khmernltk import sentence_tokenize

        return len(stripped(sentence_tokenize(line)))


class Lao(Segmenter):
    name = "laonlp"
    packages = (Package("laonlp", "laonlp"),)

    def words(self, text: str) -> list[str]:
        from laonlp.tokenize import word_tokenize

        return stripped(word_tokenize(text))

    def sentence_count(self, line: str) -> int:
        from laonlp.tokenize import sent_tokenize

        return len(stripped(sent_tokenize(line)))


class Burmese(Segmenter):
    name = "pyidaungsu (words), punctuation rule (sentences)"
    packages = (Package("pyidaungsu-numpy2", "pyidaungsu"),)

    def words(self, text: str) -> list[str]:
        import pyidaungsu

        return stripped(pyidaungsu.tokenize(text, form="word"))

    def sentence_count(self, line: str) -> int:
        return regex_sentence_count(line)


class Tibetan(Segmenter):
    """botok's word tokenizer; its "general" dialect pack must already be on disk (no download here)."""

    name = "botok (general dialect pack)"
    packages = (Package("botok", "botok"),)

    @staticmethod
    def dialect_pack() -> Path:
        return Path.home() / "Documents" / "pybo" / "dialect_packs" / "general"

    def missing_data(self) -> str | None:
        if self.dialect_pack().is_dir():
            return None
        return (
            f"botok's dialect pack is not at {self.dialect_pack()} and would be downloaded on first use; "
            "copy the 'general' pack there from a machine that has it, or leave bo out of signal_languages"
        )

    @cached_property
    def _tokenizer(self):
        problem = self.missing_data()
        if problem:
            raise RuntimeError(f"Tibetan (bo) word segmentation: {problem}")
        from botok import WordTokenizer

        return WordTokenizer()

    def _tokens(self, text: str):
        try:
            return self._tokenizer.tokenize(text, split_affixes=False)
        except Exception:  # noqa: BLE001 - botok fails on some spacing; datatrove retries without spaces
            return self._tokenizer.tokenize(re.sub(r"\s+", "", text), split_affixes=False)

    def words(self, text: str) -> list[str]:
        return stripped(tok.text for tok in self._tokens(text))

    def sentence_count(self, line: str) -> int:
        from botok.tokenizers.sentencetokenizer import get_sentence_indices

        return len(get_sentence_indices(self._tokens(line)))


def segmenter_for(lang: str) -> Segmenter | None:
    """A fresh segmenter for an unspaced language (None: spaCy's rule-based tokenizer splits it)."""
    factory = _SEGMENTERS.get(lang)
    return factory() if factory else None


def segmented_languages() -> list[str]:
    return sorted(_SEGMENTERS)


_SEGMENTERS = {
    "zh": Chinese,
    "vi": Vietnamese,
    "ja": Sudachi,
    "th": Thai,
    "ko": Korean,
    "km": Khmer,
    "lo": Lao,
    "my": Burmese,
    "bo": Tibetan,
}
