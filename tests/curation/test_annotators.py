"""The annotator interface: registration, declared columns and rules, presets, the fused kernel, spec errors."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from curation.annotate.kernel import AnnotateKernel
from curation.annotate.stage import AnnotateConfig
from curation.annotators import (
    DEFAULT_ANNOTATORS,
    Annotator,
    annotator_class,
    build,
    column_rules,
    known_annotators,
    preset_reasons,
    preset_rules,
)
from curation.rules import arrow_failing, language_rules
from pipelines.framework.drop_reason import describe
from tests.curation.planted import GSM8K, planted


def test_every_entry_point_is_an_annotator_declaring_its_rules():
    names = known_annotators()
    assert set(DEFAULT_ANNOTATORS) | {
        "url_filter",
        "url_blocklist",
        "word_blocklist",
        "decontam",
        "minhash",
    } <= set(names)
    for name in names:
        cls = annotator_class(name)
        assert issubclass(cls, Annotator) and cls.name == name
        rules = list(cls.rules) + [r for preset in cls.presets.values() for r in preset]
        for rule in rules:
            assert describe(rule.reason), f"{name}: reason {rule.reason} has no registered description"
    with pytest.raises(ValueError, match="known annotators: .*gopher"):
        annotator_class("gopherx")
    assert annotator_class("curation.annotators.c4:C4") is annotator_class("c4")  # import paths work too
    with pytest.raises(ValueError, match="not a subclass of Annotator"):
        annotator_class("curation.annotators.c4:FIELDS")


def test_rules_read_only_columns_their_annotator_declares(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("bad\n")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        '{"question": "one two three four five six seven eight nine ten eleven twelve thirteen"}\n'
    )
    configs = {
        "url_blocklist": {"path": str(words)},
        "url_filter": {"path": str(words)},
        "word_blocklist": {"path": str(words)},
        "decontam": {"benchmarks": [{"path": str(bench)}]},
    }
    for name in known_annotators():
        (annotator,) = build([{name: configs.get(name)}])
        columns = {f.name for f in annotator.fields()}
        rules = list(annotator.rules) + [r for preset in annotator.presets.values() for r in preset]
        assert {r.column for r in rules} <= columns, name


def test_presets_resolve_in_order_with_overrides():
    gopher = preset_rules(["gopher"])
    assert gopher == preset_rules(["gopher_quality"]) + preset_rules(["gopher_repetition"])
    assert [r.reason for r in preset_rules(["c4"])] == [
        "c4_lorem_ipsum",
        "c4_curly_bracket",
        "c4_too_few_sentences",
    ]
    both = preset_rules(["gopher", "gopher_quality", "fineweb"])
    assert len(both) == len({r.reason for r in both}) == len(gopher) + 5  # each reason once
    tuned = preset_rules(["gopher_quality"], {"gopher_short_doc": 10, "gopher_long_doc": None})
    assert tuned[0].value == 10 and "gopher_long_doc" not in {r.reason for r in tuned}
    assert "fineweb_list_ratio" in preset_reasons()
    with pytest.raises(ValueError, match="unknown threshold name"):
        preset_rules(["c4"], {"c4_lorem": 1})
    with pytest.raises(ValueError, match="unknown preset 'c5'"):
        preset_rules(["c5"])


def test_column_rules_follow_the_columns_present_in_rank_order():
    columns = ["contamination_ngrams", "blocked_word_count", "url_blocked", "url_filter_blocked", "text"]
    assert [r.reason for r in column_rules(columns)] == [
        "url_blocklist",
        "url_filter",
        "word_blocklist",
        "contamination",
    ]
    assert [r.value for r in column_rules(["blocked_word_count"], {"word_blocklist": 3})] == [3]
    assert column_rules(["text", "lang"]) == []


def test_signal_languages_leave_other_documents_unmeasured(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("cat\n")
    kernel = AnnotateKernel(
        build(["gopher", "c4", "fineweb", {"word_blocklist": {"path": str(words)}}]),
        signal_languages=frozenset({"en"}),
    )
    texts = ["The cat sat on the mat.", "Die Katze cat."]
    out = kernel(pa.RecordBatch.from_pydict({"text": texts, "lang": ["en", "de"]}))
    assert out.column("char_count").to_pylist() == [len(texts[0]), None]
    assert out.column("c4_sentence_count").to_pylist()[1] is None
    assert out.column("fineweb_line_count").to_pylist() == [1, None]
    assert out.column("blocked_word_count").to_pylist() == [1, 1]  # not language-scoped


def test_fused_decide_keeps_an_earlier_reason_and_lists_every_failure():
    rules = language_rules(["en"], None) + preset_rules(["c4"])
    kernel = AnnotateKernel(build(["gopher", "c4", "fineweb"]), rules=rules)
    texts = ["lorem ipsum dolor sit amet.", "lorem ipsum dolor sit amet.", "Short."]
    batch = pa.RecordBatch.from_pydict(
        {"text": texts, "lang": ["en", "de", "en"], "drop_reason": ["earlier", None, None]}
    )
    out = kernel(batch)
    assert out.schema == kernel.output_schema(batch.schema)
    assert out.column("drop_reason").to_pylist() == ["earlier", "language", "c4_too_few_sentences"]
    assert out.column("drop_reasons").to_pylist() == [
        ["c4_lorem_ipsum", "c4_too_few_sentences"],
        ["language", "c4_lorem_ipsum", "c4_too_few_sentences"],
        ["c4_too_few_sentences"],
    ]
    assert out.column("drop_reasons").to_pylist() == arrow_failing(out, rules)
    with pytest.raises(ValueError, match="already has column"):
        kernel.output_schema(out.schema)


class CharLength(Annotator):
    """A filter written by a user: one column, one rule (what docs/architecture.md walks through)."""

    name = "char_length"

    def fields(self) -> list[pa.Field]:
        return [pa.field("n_chars", pa.int32())]

    def compute(self, ctx) -> list[pa.Array]:
        return [pa.compute.utf8_length(ctx.batch.column(ctx.text_column))]


def test_decontam_and_a_user_annotator_ride_the_same_scan(shared_data, web_texts):
    texts, targets = planted(shared_data, web_texts[:40])
    gsm8k = str(shared_data / GSM8K)
    kernel = AnnotateKernel(
        [*build(["langid", {"decontam": {"benchmarks": [{"path": gsm8k}]}}]), CharLength()]
    )
    batch = pa.RecordBatch.from_pydict({"text": texts, "uri": [None] * len(texts)})
    out = kernel(batch)
    assert out.schema == kernel.output_schema(batch.schema)
    hits = {i for i, n in enumerate(out.column("contamination_ngrams").to_pylist()) if n}
    assert hits == {t for t in targets if t < 30}  # the 10 GSM8K items went into docs 1..28
    assert out.column("n_chars").to_pylist() == [len(t) for t in texts]


def test_spec_errors_name_the_annotator_and_field():
    with pytest.raises(ValidationError, match=r"annotators\[1\] c4: min_word_per_line: Extra inputs"):
        AnnotateConfig(annotators=["gopher", {"c4": {"min_word_per_line": 2}}])
    with pytest.raises(ValidationError, match=r"url_filter: path: Field required"):
        AnnotateConfig(annotators=[{"url_filter": None}])
    with pytest.raises(ValidationError, match="listed more than once"):
        AnnotateConfig(annotators=["c4", "c4"])
    with pytest.raises(ValidationError, match=r"expected a name or \{name"):
        AnnotateConfig(annotators=[{"c4": {}, "gopher": {}}])
    with pytest.raises(ValidationError, match=r"benchmarks moved: use annotators: \[\{decontam"):
        AnnotateConfig(benchmarks=[{"path": "x.jsonl"}])
    default = AnnotateConfig()
    assert [next(iter(e)) for e in default.annotators] == list(DEFAULT_ANNOTATORS)
    assert AnnotateConfig.model_validate(default.model_dump(mode="json")) == default  # a record re-reads


def test_only_the_listed_annotators_are_imported():
    """A spec naming c4 never imports language ID, tldextract or dedup (lookup by entry point is lazy)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from curation.annotate.stage import AnnotateConfig\n"
        "AnnotateConfig(annotators=['c4']).kernel()\n"
        "print(sorted(m for m in ('curation.annotators.c4', 'curation.annotators.langid', "
        "'curation.annotators.url_filter', 'tldextract', 'dedup.config') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['curation.annotators.c4']"


def test_decide_applies_an_annotators_column_rule_in_the_fused_scan(tmp_path):
    from curation.decide import DecisionRules

    listed = tmp_path / "list.txt"
    listed.write_text("danger.org\n")
    kernel = AnnotateKernel(build([{"url_filter": {"path": str(listed)}}]))
    decide = DecisionRules(presets=[], languages=None, min_lang_score=None)
    kernel.rules = decide.rule_list([f.name for f in kernel.fields()])
    urls = ["https://www.danger.org/x", "https://safe.org/"]
    out = kernel(pa.RecordBatch.from_pydict({"text": ["a", "b"], "uri": urls}))
    assert out.column("drop_reason").to_pylist() == ["url_filter", None]
