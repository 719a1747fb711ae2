"""A small curated-like table built from real text in ../shared/data, shared by the shard and tokenizer tests.

Rows: the 50 RedPajama/Pile documents of data-juicer's samples (source = file name),
the 20 Common Crawl WET documents of dolma's samples, and documents of 12 real
sentences each from lingua's test data for 8 languages (lang = file name). The
`drop_reason` and `quality_score` columns stand in for the curation stages: rows
under 500 characters are marked `too_short`, and the score is the share of
alphabetic characters (a real, if crude, signal).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

LINGUA_LANGS = ("de", "en", "es", "fr", "ja", "ru", "ar", "zh")
SENTENCES_PER_DOC = 12
DOCS_PER_LANG = 6
MIN_CHARS = 500
SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("text", pa.string()),
        ("lang", pa.string()),
        ("quality_score", pa.float64()),
        ("drop_reason", pa.string()),
    ]
)


def _doc(text: str, source: str, lang: str, locator: str) -> dict:
    alpha = sum(ch.isalpha() for ch in text) / max(1, len(text))
    return {
        "doc_id": hashlib.sha256(f"{source}\n{text}".encode()).hexdigest()[:32],
        "source": source,
        "locator": locator,
        "text": text,
        "lang": lang,
        "quality_score": round(alpha, 4),
        "drop_reason": "too_short" if len(text) < MIN_CHARS else None,
    }


def corpus_rows(shared: Path) -> list[dict]:
    rows = []
    for path in sorted((shared / "web" / "datajuicer_pretrain_source_samples").glob("*.jsonl")):
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            rows.append(_doc(json.loads(line)["text"], path.stem, "en", f"{path.name}:{line_no}"))
    for path in sorted((shared / "web" / "dolma_cc_samples" / "multiple_files").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                rows.append(_doc(json.loads(line)["text"], "dolma_cc", "en", f"{path.name}:{line_no}"))
    lingua = shared / "langid" / "lingua" / "language-testdata" / "sentences"
    for lang in LINGUA_LANGS:
        lines = (lingua / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        for d in range(DOCS_PER_LANG):
            chunk = lines[d * SENTENCES_PER_DOC : (d + 1) * SENTENCES_PER_DOC]
            rows.append(_doc(" ".join(chunk), "lingua", lang, f"{lang}.txt:{d * SENTENCES_PER_DOC + 1}"))
    return rows


def write_corpus(lake, table: str, shared: Path) -> int:
    """Commit the corpus as a Delta table of two files (two shard-writing tasks); returns its version."""
    data = pa.Table.from_pylist(corpus_rows(shared), schema=SCHEMA)
    half = data.num_rows // 2
    lake.write_arrow(data.slice(0, half), table)
    return lake.write_arrow(data.slice(half), table, mode="append").version


@pytest.fixture()
def corpus_table(lake, shared_data: Path) -> str:
    """`test/curated` in a fresh lake (the name the shards stage reads by default)."""
    write_corpus(lake, "test/curated", shared_data)
    return "test/curated"


@pytest.fixture(scope="session")
def small_tokenizer(tmp_path_factory, shared_data: Path) -> Path:
    """A 1,000-token byte-level BPE trained by our trainer on the corpus (uint16 shards)."""
    from training.tokenizer.build import train_bpe
    from training.tokenizer.load import save_tokenizer

    texts = (row["text"] for row in corpus_rows(shared_data))
    tokenizer = train_bpe(texts, vocab_size=1000)
    return save_tokenizer(tokenizer, tmp_path_factory.mktemp("tok") / "tokenizer.json")


def test_corpus_has_kept_and_dropped_rows(shared_data: Path) -> None:
    rows = corpus_rows(shared_data)
    assert len(rows) == 50 + 20 + len(LINGUA_LANGS) * DOCS_PER_LANG
    assert len({r["doc_id"] for r in rows}) == len(rows)
    assert any(r["drop_reason"] for r in rows) and any(r["drop_reason"] is None for r in rows)


@dataclass
class BuiltShards:
    ctx: object
    folder: Path
    tokenizer: Path
    table: str


def shards_config(tokenizer: Path, **overrides) -> dict:
    """Small shards so that the corpus spans several per split."""
    return {
        "tokenizer": str(tokenizer),
        "shard_tokens": 4000,
        "validation_fraction": 0.2,
        **overrides,
    }


@pytest.fixture(scope="session")
def built_shards(spark, tmp_path_factory, shared_data: Path, small_tokenizer: Path) -> BuiltShards:
    """One shard set built by the stage from the corpus, shared read-only by the shard tests (copy to corrupt)."""
    from pipelines.framework.lake import Lake
    from pipelines.framework.stage import StageContext
    from training.shards.config import ShardsConfig
    from training.shards.stage import Shards

    root = tmp_path_factory.mktemp("built")
    lake = Lake(root / "lake")
    write_corpus(lake, "test/curated", shared_data)
    ctx = StageContext(spark=spark, lake=lake, dataset="test", run_id="test-built", work_dir=root / "work")
    Shards(ShardsConfig(**shards_config(small_tokenizer))).run(ctx)
    return BuiltShards(ctx, lake.root / "shards" / "default", small_tokenizer, "test/curated")
