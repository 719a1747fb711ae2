"""The word split per language: real segmenters for unspaced scripts, spaCy elsewhere, missing ones loud."""

from __future__ import annotations

import pytest

from curation import segmenters
from curation.segmenters import Package, Tibetan, byte_pieces
from curation.words import SegmenterMissing, require_segmenters, split_words, tokenizer_name, words_for


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        ("zh", "我们是中国人。", ["我们", "是", "中国", "人", "。"]),
        ("ja", "東京は日本の首都です。", ["東京", "は", "日本", "の", "首都", "です", "。"]),
        ("th", "ผมชอบกินข้าว", ["ผม", "ชอบ", "กินข้าว"]),
        ("vi", "Tôi yêu Việt Nam.", ["Tôi", "yêu", "Việt Nam", "."]),
        ("km", "ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា។", ["ខ្ញុំ", "ស្រឡាញ់", "ប្រទេស", "កម្ពុជា", "។"]),
        ("de", "Wie geht's? Gut.", ["Wie", "geht's", "?", "Gut", "."]),
    ],
)
def test_each_language_gets_its_segmenter(lang, text, expected):
    assert split_words(text, lang) == expected
    assert words_for(lang)(text) == expected


def test_korean_uses_kiwi_morphemes():
    words = split_words("오늘 날씨가 좋아요.", "ko")
    assert words[:3] == ["오늘", "날씨", "가"] and words[-1] == "."


def test_proxy_languages_use_the_related_languages_rules():
    # Swiss German is split with German rules, Swahili with Tswana's, as datatrove assigns them.
    assert tokenizer_name("gsw") == "spaCy rules (de)"
    assert tokenizer_name("zh").startswith("jieba")
    assert split_words("Grüezi, mitenand!", "gsw") == ["Grüezi", ",", "mitenand", "!"]
    # Cantonese is split as Chinese, with jieba (datatrove's spaCy `zh` tokenizer), not per character.
    assert split_words("我们是中国人。", "yue") == split_words("我们是中国人。", "zh")
    assert tokenizer_name("yue") == tokenizer_name("zh")


def test_japanese_is_cut_below_sudachis_input_limit():
    text = ("東京は日本の首都です。" * 800 + "\n") * 3
    pieces = byte_pieces(text, 40_000)
    assert "".join(pieces) == text
    assert all(len(p.encode("utf-8")) <= 40_000 for p in pieces) and len(pieces) > 1
    assert len(split_words(text, "ja")) == 3 * 800 * 7


def test_a_missing_segmenter_package_fails_naming_the_pip_command(monkeypatch):
    class Absent(segmenters.Thai):
        packages = (Package("no-such-segmenter", "no_such_segmenter_module"),)

    monkeypatch.setitem(segmenters._SEGMENTERS, "th", Absent)
    with pytest.raises(SegmenterMissing, match=r"th: .*pip install no-such-segmenter"):
        require_segmenters(["th", "en"])
    require_segmenters(["en", "zh", "ja", "ko", "vi"])


@pytest.mark.skipif(Tibetan.dialect_pack().is_dir(), reason="botok's dialect pack is on this machine")
def test_tibetan_without_its_dialect_pack_fails_at_start_not_by_downloading():
    with pytest.raises(SegmenterMissing, match="dialect pack"):
        require_segmenters(["bo"])
    require_segmenters(["bo"], data=False)  # the package itself is installed
    with pytest.raises(RuntimeError, match="leave bo out of signal_languages"):
        split_words("བཀྲ་ཤིས་བདེ་ལེགས།", "bo")
    assert not Tibetan.dialect_pack().exists()


def test_spacy_words_are_the_same_cold_warm_and_across_a_cache_clear(web_texts, monkeypatch):
    """The per-chunk memo gives spaCy's words whether a chunk is new, cached, or evicted mid-document."""
    import spacy

    from curation import words as words_module

    nlp = spacy.blank("en")
    texts = web_texts[:30]
    expected = [[t.text.strip() for t in nlp(text) if t.text.strip()] for text in texts]
    monkeypatch.setattr(words_module, "MAX_CACHED_CHUNKS", 50)  # clears on most documents
    tokenizer = words_module.ChunkTokenizer("en")
    assert [tokenizer.words(text) for text in texts] == expected
    assert [tokenizer.words(text) for text in texts] == expected


def test_thai_sentence_count_is_crfcuts_on_real_thai(shared_data):
    """Our crfcut count (no sentence strings built) equals `len(stripped(sent_tokenize(line)))`, and its
    features equal crfcut's, on lingua's Thai sentences alone and run together as paragraphs."""
    from pythainlp.tokenize import crfcut, sent_tokenize

    from curation.segmenters import stripped
    from curation.thai_sentences import crf_features, sentence_count
    from tests.curation.multilingual_docs import lingua_sentences

    sentences = lingua_sentences(shared_data, "th")
    lines = sentences[:300] + [" ".join(sentences[i : i + 5]) for i in range(300, len(sentences), 5)]
    lines += ["", "ครับ  ครับ", "  ครับ.", "!?"]
    assert [sentence_count(line) for line in lines] == [len(stripped(sent_tokenize(line))) for line in lines]
    for line in lines[::10]:
        tokens = crfcut.word_tokenize(line)
        assert crf_features(tokens) == crfcut._extract_features(tokens)
    assert max(sentence_count(line) for line in lines) > 1  # the paragraphs do split


def test_long_runs_of_punctuation_reach_spacy_in_bounded_pieces_and_split_as_it_splits_them():
    """spaCy peels a chunk's leading and trailing affixes one at a time, searching the whole rest each
    time: 40,000 "{" before a word took minutes (datatrove stalls there too). Every string our tokenizer
    hands spaCy now keeps (run of non-word characters at either end) x (length) within AFFIX_WORK, and
    the words stay spaCy's own wherever its whole-chunk split can be computed here."""
    import spacy

    from curation import words as words_module

    nlp = spacy.blank("en")
    tokenizer = words_module.ChunkTokenizer("en")
    seen: list[str] = []
    spacy_tokenize = tokenizer._nlp.tokenizer
    tokenizer._nlp.tokenizer = lambda text: seen.append(text) or spacy_tokenize(text)
    hostile = "{" * 40_000 + "lorem ipsum" + "}" * 40_000 + " a" + '"' * 30_000
    assert (
        tokenizer.words(hostile)
        == ["{"] * 40_000 + ["lorem", "ipsum"] + ["}"] * 40_000 + ["a"] + ['"'] * 30_000
    )
    for text in seen:
        runs = [
            len(m.group()) for m in (words_module._NON_WORD_RUN.match(t) for t in (text, text[::-1])) if m
        ]
        assert (
            len(text) <= words_module.LONG_CHUNK
            or max(runs, default=0) * len(text) <= words_module.AFFIX_WORK
        )
    for chunk in (
        "(" * 300 + "word" + ")" * 300,
        "=" * 300,
        '"' * 200 + "x",
        "http://example.com/" + "ab-cd." * 50,
    ):
        assert tokenizer.words(chunk) == [t.text for t in nlp.tokenizer(chunk)], chunk[:20]


def test_segmenting_chinese_writes_nothing_to_the_terminal():
    """jieba logs its dictionary cache at DEBUG to stderr in every Spark worker, through the progress bar."""
    import subprocess
    import sys

    code = "from curation.words import split_words; print(split_words('我们是中国人。', 'zh'))"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and "中国" in ran.stdout
    assert "prefix dict" not in ran.stderr and "jieba" not in ran.stderr, ran.stderr
