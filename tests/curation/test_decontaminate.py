"""The decontaminate stage on Spark: both modes find exactly the planted benchmark items."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation.decontam.index import BenchmarkSpec, DecontamIndex
from curation.decontam.kernel import HashKernel, MatchKernel
from curation.decontam.stage import Decontaminate
from tests.curation.planted import GSM8K, HUMANEVAL, planted
from tests.curation.stage_run import run_stage, table_rows


@pytest.mark.parametrize("mode", ["broadcast", "join"])
def test_decontaminate_finds_planted_items_only(stage_ctx, shared_data, web_texts, mode):
    texts, targets = planted(shared_data, web_texts)
    earlier = {0, 4}  # an earlier stage's drop is kept, even on a planted document (4)
    table = pa.table(
        {
            "doc_id": [f"d{i:04d}" for i in range(len(texts))],
            "text": texts,
            "drop_reason": [("earlier" if i in earlier else None) for i in range(len(texts))],
        }
    )
    stage_ctx.lake.write_arrow(table, stage_ctx.table("annotated"))
    benchmarks = [{"path": str(shared_data / GSM8K)}, {"path": str(shared_data / HUMANEVAL)}]
    result = run_stage(Decontaminate(Decontaminate.Config(benchmarks=benchmarks, mode=mode)), stage_ctx)
    assert result.metrics["mode"] == mode
    out = table_rows(stage_ctx, "decontaminated").sort_by("doc_id")
    assert out.num_rows == len(texts)
    reasons = out.column("drop_reason").to_pylist()
    assert {i for i, r in enumerate(reasons) if r == "contamination"} == targets - earlier
    assert {i for i, r in enumerate(reasons) if r == "earlier"} == earlier
    names = {out.column("contamination_benchmark")[i].as_py() for i in targets}
    assert names == {"gsm8k/test", "HumanEval"}


def test_kernels_agree_with_the_index(shared_data, web_texts):
    """The broadcast kernel's counts equal the join's distinct-n-gram hits summed per document."""
    texts, targets = planted(shared_data, web_texts[:40])

    index = DecontamIndex.build([BenchmarkSpec(shared_data / GSM8K)])
    batch = pa.RecordBatch.from_pydict({"doc_id": [str(i) for i in range(len(texts))], "text": texts})
    matched = MatchKernel(index, "text")(batch)
    hits = {i for i, n in enumerate(matched.column("contamination_ngrams").to_pylist()) if n}
    assert hits == {t for t in targets if t < 30}  # the 10 GSM8K items went into docs 1..28
    pairs = HashKernel(13, "text", "doc_id")(batch)
    assert pairs.schema == HashKernel.schema
    in_index = pc.is_in(pairs.column("ngram"), pa.array(list(index.ngrams), pa.int64()))
    probe_hits = {int(d) for d in pairs.filter(in_index).column("_doc").to_pylist()}
    assert probe_hits == hits
