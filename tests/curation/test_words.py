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
