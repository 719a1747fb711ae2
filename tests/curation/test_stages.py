"""The curation stages on Spark over real documents: rows in = rows out, reasons as the Arrow evaluator says."""

from __future__ import annotations

import pyarrow as pa
import pytest
from curation.annotate import Annotator

from curation.annotate_stage import Annotate
from curation.decide import Decide
from curation.rules import PRESETS, arrow_failing, language_rules
from tests.curation.planted import planted
from tests.curation.stage_run import run_stage as _run
from tests.curation.stage_run import table_rows as _rows


def test_annotate_then_decide_matches_arrow_rules(stage_ctx, documents):
    _run(Annotate(Annotate.Config()), stage_ctx)
    annotated = _rows(stage_ctx, "annotated")
    assert annotated.num_rows == documents.num_rows
    assert {"lang", "lang_score", "lang_top3", "gopher_word_count", "c4_sentence_count"} <= set(
        annotated.column_names
    )

    result = _run(Decide(Decide.Config()), stage_ctx)
    decided = _rows(stage_ctx, "decided").sort_by("doc_id")
    assert decided.num_rows == documents.num_rows
    rules = language_rules(["en"], 0.65) + PRESETS["gopher"] + PRESETS["c4"] + PRESETS["fineweb"]
    expected = arrow_failing(decided, rules)
    assert decided.column("drop_reasons").to_pylist() == expected
    assert decided.column("drop_reason").to_pylist() == [r[0] if r else None for r in expected]
    assert result.metrics["rule_order"][0] == "language"
    kept = sum(r is None for r in decided.column("drop_reason").to_pylist())
    assert 0 < kept < decided.num_rows


def test_fused_decide_with_signal_languages_matches_two_stages(stage_ctx, documents):
    """annotate(signal_languages=[en], decide=...) in one scan decides exactly as annotate + decide."""
    _run(Annotate(Annotate.Config()), stage_ctx)
    _run(Decide(Decide.Config()), stage_ctx)
    two = _rows(stage_ctx, "decided").sort_by("doc_id")
    fused_cfg = Annotate.Config(output="fused", signal_languages=["en"], decide={})
    result = _run(Annotate(fused_cfg), stage_ctx)
    fused = _rows(stage_ctx, "fused").sort_by("doc_id")
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
    _run(Annotate(Annotate.Config(signal_languages=["de"])), stage_ctx)
    _run(Decide(Decide.Config(min_lang_score=None)), stage_ctx)
    decided = _rows(stage_ctx, "decided")
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


def test_fused_annotate_with_decontam_and_extra_kernel(shared_data, web_texts):
    from curation.decontam import BenchmarkSpec, DecontamIndex

    texts, targets = planted(shared_data, web_texts[:40])
    index = DecontamIndex.build([BenchmarkSpec(shared_data / "decontam/gsm8k/test.jsonl")])
    lengths = (lambda b: [pa.compute.utf8_length(b.column("text"))], [pa.field("n_chars", pa.int32())])
    kernel = Annotator(decontam=index, extra=[lengths])
    batch = pa.RecordBatch.from_pydict({"text": texts, "uri": [None] * len(texts)})
    out = kernel(batch)
    assert out.schema == kernel.output_schema(batch.schema)
    hits = {i for i, n in enumerate(out.column("contamination_ngrams").to_pylist()) if n}
    assert hits == {t for t in targets if t < 30}  # the 10 GSM8K items went into docs 1..28
    assert out.column("n_chars").to_pylist() == [len(t) for t in texts]


def test_minhash_signatures_from_annotate_are_reused_by_dedup(stage_ctx, documents):
    """The signature computed in annotate's scan dedups exactly as minhash_dedup's own scan."""
    from dedup.stages import MinHashDedup

    _run(Annotate(Annotate.Config(minhash={})), stage_ctx)
    assert _rows(stage_ctx, "annotated").column("minhash").null_count < documents.num_rows
    _run(MinHashDedup(MinHashDedup.Config(input="annotated", output="fresh")), stage_ctx)
    _run(
        MinHashDedup(MinHashDedup.Config(input="annotated", output="reused", reuse_signatures=True)),
        stage_ctx,
    )
    fresh, reused = (_rows(stage_ctx, t).sort_by("doc_id") for t in ("fresh", "reused"))
    for column in ("minhash", "dup_cluster", "drop_reason"):
        assert fresh.column(column).to_pylist() == reused.column(column).to_pylist()
    other = MinHashDedup(MinHashDedup.Config(input="annotated", output="bad", reuse_signatures=True, ngram=3))
    with pytest.raises(ValueError, match="signature settings"):
        other.run(stage_ctx)
