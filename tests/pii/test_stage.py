"""The pii stage through Spark on real documents: rows preserved, scopes, metrics, and no original value
anywhere in the curated table."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from pii.settings import PiiSettings
from pii.stage import PiiConfig, PiiStage


def _input_table(shared_data: Path, generated_small: list[dict]) -> pa.Table:
    """Real CC documents holding e-mails (dolma's fixtures) and presidio-research sentences, plus a null text."""
    with gzip.open(shared_data / "peer-tests/dolma/tests/data/provided/documents/000.json.gz", "rt") as fh:
        web = sorted((d["text"] for d in map(json.loads, fh) if "@" in d["text"]), key=len)[:3]
    texts = web + [r["full_text"] for r in generated_small[:30]] + [None]
    n = len(texts)
    return pa.table(
        {
            "doc_id": [f"d{i:02d}" for i in range(n)],
            "text": texts,
            # every fifth row was dropped upstream; rows 3 and 13 carry another language
            "drop_reason": ["dup" if i % 5 == 4 else None for i in range(n)],
            "lang": ["de" if i in (3, 13) else "en" for i in range(n)],
        }
    )


def _values(texts: list[str], settings: PiiSettings) -> set[str]:
    from pii.engine import get_analyzer

    found = get_analyzer(settings).analyze_batch(texts)
    return {t[r.start : r.end] for t, rs in zip(texts, found, strict=True) for r in rs if r.end - r.start > 3}


def _run(stage_ctx, lake, source: pa.Table, config: PiiConfig) -> tuple[pa.Table, dict]:
    lake.write_arrow(source, stage_ctx.table("decided"))
    result = PiiStage(config).run(stage_ctx)
    lake.write(result.tables["curated"], stage_ctx.table("curated"))
    return lake.dataset(stage_ctx.table("curated")).to_table().sort_by("doc_id"), result.metrics


def test_stage_redacts_and_keeps_rows(stage_ctx, lake, shared_data, generated_small):
    src = _input_table(shared_data, generated_small)
    out, metrics = _run(stage_ctx, lake, src, PiiConfig())
    assert out.column("doc_id").to_pylist() == src.column("doc_id").to_pylist()  # rows in = rows out

    rows = {r["doc_id"]: r for r in out.to_pylist()}
    last = f"d{src.num_rows - 1:02d}"
    assert rows[last]["pii_scope"] is None and rows[last]["text"] is None
    assert rows["d03"]["pii_scope"] == "patterns"
    assert rows["d04"]["pii_scope"] == "withheld" and rows["d04"]["text"] is None
    assert rows["d00"]["pii_scope"] == "full"

    # Pattern values (e-mails, numbers) appear nowhere in the table; names nowhere in their own NER row
    # (as words: "Shakespeare" found in one place may stay inside "ShakespeareAV", a different token).
    texts = [t for t in src.column("text").to_pylist() if t]
    patterns = _values(texts, PiiSettings(ner=False))
    dumped = json.dumps(out.to_pylist(), default=str)
    assert patterns and [v for v in patterns if v in dumped] == []
    names = 0
    for before, after in zip(src.to_pylist(), out.to_pylist(), strict=True):
        if after["pii_scope"] == "full":
            found = _values([before["text"]], PiiSettings())
            names += len(found)
            kept = [v for v in found if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", after["text"])]
            assert kept == [], before["doc_id"]
    assert names > 15

    assert metrics["entities"]["EMAIL_ADDRESS"] >= 3
    assert metrics["kept_rows_without_ner_language"] == 2
    assert metrics["rows_by_scope"]["withheld"] == 6
    assert sum(metrics["rows_by_scope"].values()) == src.num_rows
    assert metrics["ner_decoder"].startswith("batched decoder")


def test_dropped_rows_pattern_redaction(stage_ctx, lake, shared_data, generated_small):
    src = _input_table(shared_data, generated_small)
    out, metrics = _run(stage_ctx, lake, src, PiiConfig(dropped="patterns", ner=False))
    scopes = out.column("pii_scope").to_pylist()
    assert scopes.count("dropped") == 6 and "full" not in scopes
    originals = _values([t for t in src.column("text").to_pylist() if t], PiiSettings(ner=False))
    dumped = json.dumps(out.to_pylist(), default=str)
    assert originals and [v for v in originals if v in dumped] == []
    assert metrics["ner"] is False
    assert metrics["ner_decoder"] == "no NER"


def test_pseudonym_stage_needs_key(stage_ctx, lake, shared_data, generated_small, monkeypatch):
    monkeypatch.delenv("REFINERY_PII_KEY", raising=False)
    lake.write_arrow(_input_table(shared_data, generated_small), stage_ctx.table("decided"))
    with pytest.raises(ValueError, match="REFINERY_PII_KEY"):
        PiiStage(PiiConfig(policy="pseudonym")).run(stage_ctx)


def test_registered_and_config_errors_name_fields():
    from pydantic import ValidationError

    from pipelines.framework.registry import stage_class

    assert stage_class("pii") is PiiStage
    with pytest.raises(ValidationError, match="dropped"):
        PiiConfig(dropped="delete")
    with pytest.raises(ValidationError, match="polcy"):
        PiiConfig(polcy="mask")
