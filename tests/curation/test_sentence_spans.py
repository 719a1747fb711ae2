"""Korean C4 sentences read from the document's own kiwi analysis: the same counts as the line's own split."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from curation.annotate.kernel import AnnotateKernel
from curation.annotators import build
from curation.annotators.base import BatchContext
from curation.annotators.c4 import C4Config, c4_signals
from curation.segmenters import segmenter_for
from curation.sentence_spans import SentenceSpans, balanced, line_offsets
from curation.words import split_document
from tests.curation.multilingual_docs import lingua_documents, lingua_sentences


def test_sentences_within_a_range_or_none_where_one_crosses_its_ends():
    spans = SentenceSpans([(0, 5), (6, 10), (11, 20)])
    assert spans.within(0, 10) == 2
    assert spans.within(6, 10) == 1
    assert spans.within(0, 20) == 3
    assert spans.within(21, 30) == 0
    assert spans.within(3, 10) is None  # the first sentence starts before the range
    assert spans.within(0, 15) is None  # the third ends after it


def test_quotes_and_brackets_balance_within_a_line_or_not():
    assert balanced("“무대” (추정) ‘활동’ '노동' 끝.")
    assert not balanced("‘무대 위에서")
    assert not balanced("`기존 체육관 반경 2㎞ 이내에는 새 체육관을 지을 수 없다'는")
    assert not balanced("(추정")


def test_line_offsets_follow_every_line_break_splitlines_knows():
    text = "a\r\nbb\rc\u2028dd\n\nlast"
    lines = text.splitlines()
    assert [text[at : at + len(line)] for line, at in zip(lines, line_offsets(text), strict=True)] == lines


def test_lines_after_a_blank_line_or_with_unpaired_quotes_are_split_alone():
    text = "첫 문장이다.\n‘열린 인용\n\n둘째 문단이다.\n셋째 줄이다."
    spans = SentenceSpans([(0, 7), (8, 14), (16, 24), (25, 32)])
    assert spans.line_counts(text) == [1, None, None, None, 1]


@pytest.fixture(scope="module")
def korean_documents(shared_data):
    """Real Korean text in the shapes the annotate benchmark and the agreement test build."""
    sentences = lingua_sentences(shared_data, "ko")
    prose = []
    for i in range(40):
        rng = random.Random(f"ko/{i}")
        paragraphs = []
        for _ in range(rng.randint(3, 12)):
            start = rng.randrange(0, len(sentences) - 6)
            paragraphs.append(" ".join(sentences[start : start + rng.randint(1, 6)]))
        prose.append("\n".join(paragraphs))
    return prose + lingua_documents(shared_data, "ko", 40, seed=5)


def test_counts_read_from_the_document_equal_kiwis_split_of_the_line_alone(korean_documents):
    korean = segmenter_for("ko")
    read = lines = 0
    for text in korean_documents:
        counts = split_document(text, "ko").sentences.line_counts(text)
        for raw, count in zip(text.splitlines(), counts, strict=True):
            lines += bool(raw.strip())
            if count is not None:
                read += 1
                assert count == korean.sentence_count(raw.strip()), raw
    assert read > lines / 2, (read, lines)  # most lines are read, so the comparison is not vacuous


def test_c4_signals_are_the_same_with_and_without_the_documents_split(korean_documents):
    config = C4Config()
    for text in korean_documents:
        spans = split_document(text, "ko").sentences
        assert c4_signals(text, config, "ko", spans) == c4_signals(text, config, "ko")


def test_the_document_is_split_for_its_sentences_only_where_an_annotator_reads_its_words():
    batch = pa.RecordBatch.from_pylist(
        [{"text": "오늘 날씨가 좋아요. 내일도 좋겠어요.", "lang": "ko", "uri": None}]
    )
    alone = BatchContext(batch, langs=["ko"])
    assert alone.sentences(0) is None and not alone._splits
    shared = BatchContext(batch, words_read=True, langs=["ko"])
    assert len(shared.sentences(0)) == 2
    assert BatchContext(batch, words_read=True, langs=["de"]).sentences(0) is None
    assert AnnotateKernel(build(["c4"])).context(batch).words_read is False
    assert AnnotateKernel(build(["gopher", "c4"])).context(batch).words_read is True


def test_offsets_count_code_points_so_characters_beyond_the_bmp_do_not_shift_later_lines():
    text = "😀😀 좋아요. 𝕏 테스트.\n둘째 줄입니다. 셋째 문장이다."
    spans = split_document(text, "ko").sentences
    assert spans.line_counts(text) == [2, 2]
    assert c4_signals(text, C4Config(), "ko", spans) == c4_signals(text, C4Config(), "ko")
