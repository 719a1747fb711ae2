"""The annotate stage on Spark over real documents: rows in = rows out, decide as the Arrow evaluator says."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation.annotate.stage import Annotate
from curation.annotators import preset_rules
from curation.decide import Decide
from curation.rules import arrow_failing, language_rules
from tests.curation.stage_run import run_stage, table_rows


def _file_stats(ctx, table: str) -> list[dict]:
    from deltalake import DeltaTable

    return pa.table(
        DeltaTable(str(ctx.lake.path(ctx.table(table)))).get_add_actions(flatten=True)
    ).to_pylist()


def test_annotate_then_decide_matches_arrow_rules(stage_ctx, documents):
    result = run_stage(Annotate(Annotate.Config()), stage_ctx)
    annotated = table_rows(stage_ctx, "annotated")
    assert annotated.num_rows == documents.num_rows
    assert set(result.metrics["columns_added"]) <= set(annotated.column_names)
    assert {"lang", "lang_top3", "gopher_word_count", "c4_sentence_count", "fineweb_list_ratio"} <= set(
        annotated.column_names
    )
    # Columns after the nested lang_top3 keep their own statistics in the Delta log (no reordering needed).
    assert annotated.schema.get_field_index("char_count") > annotated.schema.get_field_index("lang_top3")
    stats = _file_stats(stage_ctx, "annotated")
    assert min(s["min.char_count"] for s in stats) == pc.min(annotated.column("char_count")).as_py()
    assert max(s["max.char_count"] for s in stats) == pc.max(annotated.column("char_count")).as_py()

    result = run_stage(Decide(Decide.Config()), stage_ctx)
    decided = table_rows(stage_ctx, "decided").sort_by("doc_id")
    assert decided.num_rows == documents.num_rows
    rules = language_rules(["en"], 0.65) + preset_rules(["gopher", "c4", "fineweb"])
    assert [r.reason for r in Decide.Config().rule_list(decided.column_names) if r.op != "null"] == [
        r.reason for r in rules
    ]
    # The presets' thresholds follow each row's language (curation/thresholds), on Spark as in Arrow.
    expected = arrow_failing(decided, Decide.Config().rule_list(decided.column_names))
    assert decided.column("drop_reasons").to_pylist() == expected
    assert decided.column("drop_reason").to_pylist() == [r[0] if r else None for r in expected]
    assert result.metrics["rule_order"][0] == "language"
    kept = sum(r is None for r in decided.column("drop_reason").to_pylist())
    assert 0 < kept < decided.num_rows


def test_fused_decide_with_signal_languages_matches_two_stages(stage_ctx, documents):
    """annotate(signal_languages=[en], decide=...) in one scan decides exactly as annotate + decide."""
    run_stage(Annotate(Annotate.Config()), stage_ctx)
    run_stage(Decide(Decide.Config()), stage_ctx)
    two = table_rows(stage_ctx, "decided").sort_by("doc_id")
    fused_cfg = Annotate.Config(output="fused", signal_languages=["en"], decide={})
    result = run_stage(Annotate(fused_cfg), stage_ctx)
    fused = table_rows(stage_ctx, "fused").sort_by("doc_id")
    assert fused.column("drop_reason").to_pylist() == two.column("drop_reason").to_pylist()
    english = [i for i, lang in enumerate(fused.column("lang").to_pylist()) if lang == "en"]
    assert 0 < len(english) < fused.num_rows
    for column in ("drop_reasons", "gopher_word_count", "fineweb_line_punct_ratio"):
        ours, theirs = fused.column(column).to_pylist(), two.column(column).to_pylist()
        assert [ours[i] for i in english] == [theirs[i] for i in english]
    others = [i for i in range(fused.num_rows) if i not in set(english)]
    assert all(fused.column("char_count")[i].as_py() is None for i in others)
    assert result.metrics["rule_order"][:2] == ["language", "signals_missing"]


def test_kept_language_without_signals_is_dropped_not_passed(stage_ctx, documents):
    run_stage(Annotate(Annotate.Config(signal_languages=["de"])), stage_ctx)
    run_stage(Decide(Decide.Config(min_lang_score=None)), stage_ctx)
    decided = table_rows(stage_ctx, "decided")
    reasons = {
        reason
        for lang, reason in zip(
            decided.column("lang").to_pylist(), decided.column("drop_reason").to_pylist(), strict=True
        )
        if lang == "en"
    }
    assert reasons == {"signals_missing"}
    with pytest.raises(ValueError, match="signal_languages"):
        Annotate.Config(signal_languages=["de"], decide={"languages": ["en"]})


def test_minhash_signatures_from_annotate_are_reused_by_dedup(stage_ctx, documents):
    """The signature computed in annotate's scan dedups exactly as minhash_dedup's own scan."""
    from dedup.stages import MinHashDedup

    run_stage(Annotate(Annotate.Config(annotators=["minhash"])), stage_ctx)
    assert table_rows(stage_ctx, "annotated").column("minhash").null_count < documents.num_rows
    run_stage(MinHashDedup(MinHashDedup.Config(input="annotated", output="fresh")), stage_ctx)
    run_stage(
        MinHashDedup(MinHashDedup.Config(input="annotated", output="reused", reuse_signatures=True)),
        stage_ctx,
    )
    fresh, reused = (table_rows(stage_ctx, t).sort_by("doc_id") for t in ("fresh", "reused"))
    for column in ("minhash", "dup_cluster", "drop_reason"):
        assert fresh.column(column).to_pylist() == reused.column(column).to_pylist()
    other = MinHashDedup(MinHashDedup.Config(input="annotated", output="bad", reuse_signatures=True, ngram=3))
    with pytest.raises(ValueError, match="signature settings"):
        other.run(stage_ctx)
