"""Signals + preset rules reproduce datatrove's filters: its own test cases, and real documents as oracle."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest

from curation.annotate.kernel import AnnotateKernel
from curation.annotators import build, preset_rules
from curation.rules import arrow_failing
from curation.words import split_words


def _table(texts: list[str], lang: str = "en") -> pa.Table:
    """The Gopher, C4 and FineWeb signals of `texts`, read as documents of language `lang`."""
    kernel = AnnotateKernel(build(["gopher", "c4", "fineweb"]))
    return pa.Table.from_batches(
        [kernel(pa.RecordBatch.from_pydict({"text": texts, "lang": [lang] * len(texts)}))]
    )


def _first(texts: list[str], rules) -> list[str | None]:
    return [r[0] if r else None for r in arrow_failing(_table(texts), rules)]


@pytest.fixture(scope="module")
def peer_constants(shared_data: Path) -> dict[str, str]:
    """TEXT_LF_* strings from datatrove's own filter tests (read, not imported)."""
    tree = ast.parse(
        (shared_data / "peer-tests/datatrove/tests/pipeline/filters/test_filters.py").read_text()
    )
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").startswith("TEXT_LF")
    }


def test_datatrove_gopher_repetition_cases(peer_constants):
    lf1 = peer_constants["TEXT_LF_1"]
    cases = {
        "I am your father.\n" * 4: "gopher_dup_line_frac",
        "I am your father.\n\n" * 4: "gopher_dup_para_frac",
        "I am groot.\n\n"
        + "You are a wizard.\n\n"
        + "I am your father.\n\n"
        + f"{'x' * 30}.\n\n" * 2: "gopher_dup_para_char_frac",
        "I am groot.\n"
        + "You are a wizard.\n"
        + "I am your father.\n"
        + f"{'x' * 40}.\n" * 2: "gopher_dup_line_char_frac",
        "I am Frank, I am Frank, I am Frank": "gopher_top_2_gram",
        "I am Frank, you are Jhon. I am Frank. I am Frank you are Jhon": "gopher_top_3_gram",
        "I am a solo traveller " * 4 + lf1: "gopher_duplicated_5_n_grams",
    }
    assert _first(list(cases), preset_rules(["gopher_repetition"])) == list(cases.values())


def test_datatrove_gopher_quality_cases(peer_constants):
    rules = preset_rules(["gopher_quality"], {"gopher_short_doc": 10, "gopher_long_doc": 1000})
    cases = {
        "I am too small...": "gopher_short_doc",
        "I am " * 20: "gopher_below_avg_threshold",
        "interconnection " * 20: "gopher_above_avg_threshold",
        "# comment " * 20: "gopher_too_many_hashes",
        "... comment " * 20: "gopher_too_many_ellipsis",
        "the ./!*?<><> apple <?////> orange  ++ interconnection !<>??? have"
        * 20: "gopher_below_alpha_threshold",
        peer_constants["TEXT_LF_1"]: None,
    }
    assert _first(list(cases), rules) == list(cases.values())


def test_datatrove_c4_cases():
    good = (
        "This is a well-written paragraph with several sentences.\nThe content continues with more good information "
        "here.\nAnother important point is being made in this line.\nWe can see that this document has quality "
        "content.\nFinally, the conclusion wraps everything up nicely.\nAn additional sentence to ensure we pass the threshold."
    )
    tail = "Another sentence follows this one.\nMore content to fill out the document.\nEven more content is needed to pass.\nThe final sentence of the document."
    cases = {
        good: None,
        "This is a sentence with lorem ipsum dolor sit amet.\n" + tail: "c4_lorem_ipsum",
        "This is some code with a { bracket.\n" + tail: "c4_curly_bracket",
        "Just one sentence.": "c4_too_few_sentences",
    }
    assert _first(list(cases), preset_rules(["c4"])) == list(cases.values())


def test_datatrove_fineweb_cases():
    good = (
        "This is a well-written paragraph that ends with proper punctuation.\nThe content here is substantial and has "
        "meaningful information.\nQuality filtering ensures that only the best documents pass through.\nEach line here is "
        "long enough and ends with a terminal punctuation mark.\nThis document should pass all the quality checks applied by the filter."
    )
    assert _first([good, ""], preset_rules(["fineweb"])) == [None, "fineweb_empty"]
    low_punct = preset_rules(["fineweb"], {"fineweb_line_punct_ratio": 0.5})
    assert _first(["No punctuation here\nAnother line without any\nStill nothing"], low_punct) == [
        "fineweb_line_punct_ratio"
    ]
    short = preset_rules(["fineweb"], {"fineweb_short_line_ratio": 0.5, "fineweb_line_punct_ratio": 0.0})
    assert _first(["hi.\nbye.\nok.\nno.\nyes."], short) == ["fineweb_short_line_ratio"]
    listy = preset_rules(["fineweb"], {"fineweb_list_ratio": 0.1})
    assert _first(["\n".join(["a"] * 50)], listy) != [None]


def _datatrove_reason(filt, text: str, prefix: str) -> str | None:
    from datatrove.data import Document

    result = filt.filter(Document(text=text, id="0"))
    return None if result is True else (result[1] if result[1].startswith(prefix) else prefix + result[1])


def test_oracle_agreement_with_datatrove_on_real_documents(web_texts):
    """Per preset, the same keep/drop decision as datatrove's filter (and the same first reason) on real docs."""
    pytest.importorskip("datatrove")
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.filters.c4_filters import C4QualityFilter
    from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter

    texts = web_texts[::3]  # a third of the 268 documents keeps this test under a minute
    table = _table(texts)
    filters = {
        "gopher_quality": (GopherQualityFilter(), "gopher_"),
        "gopher_repetition": (GopherRepetitionFilter(), "gopher_"),
        "c4": (C4QualityFilter(), "c4_"),
        "fineweb": (FineWebQualityFilter(), "fineweb_"),
    }
    for name, (filt, prefix) in filters.items():
        ours = [r[0] if r else None for r in arrow_failing(table, preset_rules([name]))]
        theirs = [_datatrove_reason(filt, t, prefix) for t in texts]
        same_decision = sum((a is None) == (b is None) for a, b in zip(ours, theirs, strict=True))
        assert same_decision / len(texts) >= 0.99, name
        if name != "c4":  # C4 stops at whichever of lorem ipsum / curly bracket comes first in the text
            assert ours == theirs, name


def test_word_split_matches_spacy_and_segments_unspaced_scripts(web_texts):
    import spacy

    nlp = spacy.blank("en")
    for text in web_texts[:20]:
        assert split_words(text, "en") == [t.text.strip() for t in nlp(text) if t.text.strip()]
    # Real segmenters, not one word per character: jieba, PyThaiNLP, SudachiPy.
    assert split_words("我们是中国人。OK", "zh") == ["我们", "是", "中国", "人", "。", "OK"]
    assert split_words("ภาษาไทย ok", "th") == ["ภาษาไทย", "ok"]
    assert split_words("東京は日本の首都です。", "ja") == ["東京", "は", "日本", "の", "首都", "です", "。"]


def test_empty_and_null_texts_are_measurable():
    table = _table(["", "   ", "word"])
    assert table.column("char_count").to_pylist() == [0, 3, 4]
    assert table.column("gopher_mean_word_length").to_pylist()[0] is None
    reasons = arrow_failing(table, preset_rules(["gopher"]) + preset_rules(["fineweb"]))
    assert reasons[0][0] == "gopher_short_doc" and {"gopher_empty", "fineweb_empty"} <= set(reasons[0])
    assert "gopher_empty" not in reasons[2]
