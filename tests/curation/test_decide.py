"""The decide stage on Spark: thresholds and user rules, rows in = rows out, an earlier reason never replaced."""

from __future__ import annotations

import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from curation.annotate.stage import Annotate
from curation.decide import Decide, DecisionRules
from curation.rules import arrow_failing
from curation.thresholds import language_table
from pipelines.framework.drop_reason import describe
from pipelines.ingest.readers.base import meta_json
from tests.curation.stage_run import run_stage, table_rows

NO_THRESHOLDS = {"presets": [], "languages": None, "min_lang_score": None}


def test_decide_keeps_earlier_reason_and_overrides(stage_ctx, documents):
    run_stage(Annotate(Annotate.Config(annotators=["gopher", "c4", "fineweb"])), stage_ctx)
    cfg = Decide.Config(
        input="annotated",
        presets=["gopher_quality"],
        languages=None,
        min_lang_score=None,
        thresholds={"gopher_short_doc": 1_000_000, "gopher_enough_stop_words": None},
    )
    run_stage(Decide(cfg), stage_ctx)
    decided = table_rows(stage_ctx, "decided")
    assert set(decided.column("drop_reason").to_pylist()) == {"gopher_short_doc"}
    assert not any("gopher_enough_stop_words" in r for r in decided.column("drop_reasons").to_pylist())

    again = Decide.Config(
        input="decided", output="again", presets=["c4"], languages=None, min_lang_score=None
    )
    run_stage(Decide(again), stage_ctx)
    assert set(table_rows(stage_ctx, "again").column("drop_reason").to_pylist()) == {"gopher_short_doc"}


def test_decide_config_errors_name_the_field():
    with pytest.raises(ValueError, match="gopher_shortdoc"):
        Decide.Config(thresholds={"gopher_shortdoc": 10})
    with pytest.raises(ValueError, match="unknown preset"):
        Decide.Config(presets=["c5"])


def _tagged_documents(stage_ctx, web_texts: list[str]) -> pa.Table:
    """Real texts with the columns a user rule reads: ingest's JSON `meta`, a count, an earlier drop."""
    n = len(web_texts)
    metas = [
        {"source": ["cc", "wiki", "books"][i % 3], "stars": [3, 40, "12", None][i % 4]} for i in range(n)
    ]
    table = pa.table(
        {
            "doc_id": [f"d{i:04d}" for i in range(n)],
            "text": web_texts,
            "meta": [meta_json(m) for m in metas],
            "char_count": [len(t) for t in web_texts],
            "drop_reason": [("earlier" if i % 10 == 0 else None) for i in range(n)],
        }
    )
    stage_ctx.lake.write_arrow(table, stage_ctx.table("annotated"))
    return table


USER_RULES = [
    {"name": "t_wiki_short", "drop_if": "get_json_object(meta, '$.source') = 'wiki' AND char_count < 2000"},
    {
        "name": "t_few_stars",
        "drop_if": "TRY_CAST(get_json_object(meta, '$.stars') AS DOUBLE) NOT BETWEEN 10 AND 70",
    },
    {"name": "t_lorem", "drop_if": "lower(text) LIKE '%lorem ipsum%' OR length(trim(text)) < 1000"},
]


def test_user_rules_decide_on_spark_as_the_arrow_evaluator(stage_ctx, web_texts):
    table = _tagged_documents(stage_ctx, web_texts)
    cfg = Decide.Config(rules=USER_RULES, **NO_THRESHOLDS)
    result = run_stage(Decide(cfg), stage_ctx)
    decided = table_rows(stage_ctx, "decided").sort_by("doc_id")
    assert decided.num_rows == table.num_rows
    expected = arrow_failing(table, cfg.rule_list(table.column_names))
    assert decided.column("drop_reasons").to_pylist() == expected
    earlier = table.column("drop_reason").to_pylist()
    first = [
        before or (reasons[0] if reasons else None) for before, reasons in zip(earlier, expected, strict=True)
    ]
    assert decided.column("drop_reason").to_pylist() == first
    assert result.metrics["rule_order"] == ["t_wiki_short", "t_few_stars", "t_lorem"]
    for reason in result.metrics["rule_order"]:
        assert 0 < sum(reason in r for r in expected) < table.num_rows, reason
    assert describe("t_wiki_short") == f"user rule: drop if {USER_RULES[0]['drop_if']}"


def test_user_rules_come_before_thresholds(stage_ctx, documents):
    run_stage(Annotate(Annotate.Config(annotators=["gopher", "c4", "fineweb"])), stage_ctx)
    rule = {"name": "t_everything", "drop_if": "char_count >= 0"}
    cfg = Decide.Config(rules=[rule], presets=["c4"], languages=None, min_lang_score=None)
    run_stage(Decide(cfg), stage_ctx)
    decided = table_rows(stage_ctx, "decided")
    assert set(decided.column("drop_reason").to_pylist()) == {"t_everything"}
    assert any(len(r) > 1 for r in decided.column("drop_reasons").to_pylist())


def test_user_rule_errors_name_the_field_and_the_rule(stage_ctx, web_texts):
    with pytest.raises(ValueError, match=r"rules\.0\.drop_if[\s\S]*rule 't_bad'.*not valid Spark SQL"):
        Decide.Config(rules=[{"name": "t_bad", "drop_if": "char_count <"}])
    with pytest.raises(ValueError, match="used twice"):
        Decide.Config(rules=[{"name": "t_twice", "drop_if": "TRUE"}, {"name": "t_twice", "drop_if": "FALSE"}])
    with pytest.raises(ValueError, match="rule 'language'.*already registered"):
        DecisionRules(rules=[{"name": "language", "drop_if": "TRUE"}])
    with pytest.raises(ValueError, match="extra"):
        Decide.Config(rules=[{"name": "t_typo", "drop_iff": "TRUE"}])

    _tagged_documents(stage_ctx, web_texts[:5])
    mixed = Decide.Config(rules=[{"name": "t_mixed", "drop_if": "get_json_object(meta, '$.stars') > 10"}])
    with pytest.raises(ValueError, match="rule 't_mixed'.*mixes number and string"):
        Decide(mixed.model_copy(update=NO_THRESHOLDS)).run(stage_ctx)
    nowhere = {"rules": [{"name": "t_nowhere", "drop_if": "stars > 3"}], **NO_THRESHOLDS}
    fused = Annotate.Config(input="annotated", annotators=["c4"], decide=nowhere)
    with pytest.raises(ValueError, match="rule 't_nowhere'.*no column 'stars'"):
        Annotate(fused).run(stage_ctx)


def test_fused_annotate_applies_user_rules_as_decide(stage_ctx, documents):
    """annotate's `decide:` block evaluates user rules on Arrow batches exactly as the decide stage on Spark."""
    rules = [
        {"name": "t_site3", "drop_if": "uri LIKE '%site3.example.org%'"},
        {"name": "t_short_or_long", "drop_if": "char_count NOT BETWEEN 800 AND 20000"},
    ]
    decide = {"rules": rules, "presets": ["c4"], "languages": None, "min_lang_score": None}
    annotators = ["gopher", "c4", "fineweb"]
    run_stage(Annotate(Annotate.Config(annotators=annotators)), stage_ctx)
    run_stage(Decide(Decide.Config(**decide)), stage_ctx)
    run_stage(Annotate(Annotate.Config(annotators=annotators, output="fused", decide=decide)), stage_ctx)
    two, fused = (table_rows(stage_ctx, name).sort_by("doc_id") for name in ("decided", "fused"))
    for column in ("drop_reasons", "drop_reason"):
        assert fused.column(column).to_pylist() == two.column(column).to_pylist()
    firsts = set(fused.column("drop_reason").to_pylist())
    assert {"t_site3", "t_short_or_long", None} <= firsts


def test_a_preset_without_gopher_says_which_annotator_adds_char_count(stage_ctx, documents):
    """signals_missing reads gopher's char_count: a c4-only annotate is refused, naming gopher."""
    run_stage(Annotate(Annotate.Config(annotators=["c4"])), stage_ctx)
    cfg = Decide.Config(input="annotated", presets=["c4"], languages=None, min_lang_score=None)
    with pytest.raises(
        ValueError, match=r"\['char_count'\].*char_count, which tells rows without signals: gopher"
    ):
        run_stage(Decide(cfg), stage_ctx)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("eng", "did you mean 'en'"),
        ("English", "did you mean 'en'"),
        ("no", "lid.176's code; refinery's label for it is 'nb'"),
        ("qqq", "is not a language label"),
    ],
)
def test_a_language_no_backend_outputs_is_refused_where_it_is_named(code: str, says: str, tmp_path):
    """`languages: [eng]` kept no English at all, without a word: every list of languages is checked."""
    with pytest.raises(ValidationError, match=f"(?s)languages.*{says}"):
        Decide.Config(languages=["en", code])
    with pytest.raises(ValidationError, match=f"(?s)signal_languages.*{says}"):
        Annotate.Config(signal_languages=[code])
    table = tmp_path / "thresholds.yaml"
    table.write_text(yaml.safe_dump({"languages": {code: {"source": "test", "stop_words": ["the"]}}}))
    with pytest.raises(ValueError, match=says):
        language_table(str(table))
    assert Decide.Config(languages=["en", "zh", "gsw"]).languages == ["en", "zh", "gsw"]
