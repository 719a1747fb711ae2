"""Per-language thresholds and stop words: the table, Gopher's per-language stop words, and decide
applying the row's language's numbers the same way on Spark and in the fused Arrow scan."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation.annotate.stage import Annotate
from curation.annotators import preset_rules
from curation.annotators.gopher import FIELDS, GOPHER_STOP_WORDS, Gopher, GopherConfig
from curation.decide import Decide, DecisionRules
from curation.rules import ByLanguage, arrow_failing
from curation.thresholds import by_language, language_table
from curation.words import split_words
from tests.curation.multilingual_docs import lingua_documents
from tests.curation.stage_run import run_stage, table_rows

LANGS = ("en", "de", "fr", "ru", "zh", "ja", "th", "sw")  # sw: not in the table, English numbers


def test_the_packaged_table_names_a_source_for_every_language():
    table = language_table()
    assert {"zh", "ja", "th", "ko", "vi", "de", "fr", "es", "ru"} <= set(table.languages)
    assert (
        table.languages["en"].stop_words == list(GOPHER_STOP_WORDS) and not table.languages["en"].thresholds
    )
    for lang, entry in table.languages.items():
        assert entry.source.startswith(("huggingface/fineweb-2 configs/", "Gopher")), lang
    assert table.languages["zh"].thresholds["gopher_above_avg_threshold"] == 5


def test_by_language_rules_follow_the_row_language_and_user_overrides_win():
    table = language_table()
    rules = by_language(preset_rules(["gopher"]), table, keep={"gopher_dup_line_frac"})
    by_reason = {rule.reason: rule for rule in rules}
    above = by_reason["gopher_above_avg_threshold"].value
    assert isinstance(above, ByLanguage) and above.default == 10
    assert above.for_languages(["zh", "de", "sw", None]) == [5, 15, 10, 10]
    assert not isinstance(by_reason["gopher_dup_line_frac"].value, ByLanguage)  # kept global
    assert by_reason["gopher_short_doc"].value == 50  # no language sets it
    assert "lang" in by_reason["gopher_above_avg_threshold"].columns


def test_bad_tables_fail_naming_the_file_and_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("languages:\n  de: {source: me, stop_words: [der], thresholds: {gopher_shortdoc: 3}}\n")
    with pytest.raises(ValueError, match=r"language_thresholds: .*unknown reason.*gopher_shortdoc"):
        DecisionRules(language_thresholds=str(bad))
    bad.write_text("languages:\n  de: {source: me, stop_words: []}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: languages.de.stop_words"):
        DecisionRules(language_thresholds=str(bad))
    with pytest.raises(ValueError, match=r"no such file .*fineweb2"):
        DecisionRules(language_thresholds="fineweb3")


def test_gopher_counts_the_documents_language_stop_words():
    text = "Der Hund und die Katze spielen im Garten mit dem Ball, der rot ist."
    words = split_words(text, "de")
    gopher = Gopher()
    stop_count = [f.name for f in FIELDS].index("gopher_stop_word_count")
    german = gopher.measure(text, words, "de")[stop_count]
    assert german >= 6  # der, und, die, im, mit, dem
    assert gopher.measure(text, words, "en")[stop_count] == 0
    assert gopher.measure(text, words, "sw")[stop_count] == 0  # unlisted: Gopher's English eight
    fixed = Gopher(GopherConfig(stop_words=["Hund", "Katze"]))
    assert fixed.measure(text, words, "de")[stop_count] == 2
    english_only = Gopher(GopherConfig(language_stop_words=None))
    assert english_only.measure(text, words, "de")[stop_count] == 0


@pytest.fixture()
def multilingual(stage_ctx, shared_data):
    """A `documents` table of lingua documents in several languages, with their `lang` column."""
    texts, langs = [], []
    for lang in LANGS:
        docs = lingua_documents(shared_data, lang, 12)
        texts += docs
        langs += [lang] * len(docs)
    langs[-1] = None  # a row without a language gets the presets' numbers
    table = pa.table(
        {
            "doc_id": [f"m{i:04d}" for i in range(len(texts))],
            "text": texts,
            "lang": langs,
            "lang_score": [0.9] * len(texts),
        }
    )
    stage_ctx.lake.write_arrow(table, stage_ctx.table("documents"))
    return table


ANY_LANGUAGE = {"languages": None, "min_lang_score": None}


def test_decide_on_spark_applies_each_rows_language_thresholds_as_arrow(stage_ctx, multilingual):
    run_stage(Annotate(Annotate.Config(annotators=["gopher", "c4", "fineweb"])), stage_ctx)
    annotated = table_rows(stage_ctx, "annotated").sort_by("doc_id")
    cfg = Decide.Config(**ANY_LANGUAGE)
    run_stage(Decide(cfg), stage_ctx)
    decided = table_rows(stage_ctx, "decided").sort_by("doc_id")
    assert decided.num_rows == multilingual.num_rows
    expected = arrow_failing(annotated, cfg.rule_list(annotated.column_names))
    assert decided.column("drop_reasons").to_pylist() == expected
    # The per-language numbers change decisions: without them, some rows decide differently.
    flat = arrow_failing(
        annotated, Decide.Config(language_thresholds=None, **ANY_LANGUAGE).rule_list(annotated.column_names)
    )
    changed = [i for i, (a, b) in enumerate(zip(expected, flat, strict=True)) if a != b]
    assert changed and {annotated.column("lang")[i].as_py() for i in changed} - {"en", "sw", None}
    for i, lang in enumerate(annotated.column("lang").to_pylist()):
        if lang in ("en", "sw", None):
            assert expected[i] == flat[i], (lang, i)

    fused_cfg = Annotate.Config(annotators=["gopher", "c4", "fineweb"], output="fused", decide=ANY_LANGUAGE)
    run_stage(Annotate(fused_cfg), stage_ctx)
    fused = table_rows(stage_ctx, "fused").sort_by("doc_id")
    assert fused.column("drop_reasons").to_pylist() == expected
