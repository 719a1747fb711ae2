"""Shard sets for the loader and trainer tests, built at test time from the real web samples in ../shared/data.

A byte-level BPE (vocab 384, trains in about a second) is fitted on the data-juicer
RedPajama/Pile documents and dolma's Common Crawl documents, which are then written
with the shard format's own writer (`training.shards.sample`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.shards.sample import build_text_shards, iter_texts, train_tokenizer, write_shard_set

VOCAB = 384


@pytest.fixture(scope="session")
def web_texts(shared_data: Path) -> list[tuple[str, str]]:
    return list(iter_texts(shared_data))


@pytest.fixture(scope="session")
def web_tokenizer(web_texts, tmp_path_factory) -> Path:
    return train_tokenizer(
        [t for _, t in web_texts], VOCAB, tmp_path_factory.mktemp("tok") / "tokenizer.json"
    )


@pytest.fixture(scope="session")
def web_shards(web_texts, web_tokenizer, tmp_path_factory) -> Path:
    """4 train shards + 1 validation shard of all the web documents (about 200k tokens)."""
    out = tmp_path_factory.mktemp("web_shards")
    build_text_shards(out, [t for _, t in web_texts], web_tokenizer, train_shards=4, validation_shards=1)
    return out


@pytest.fixture(scope="session")
def two_sources(web_texts, web_tokenizer, tmp_path_factory) -> tuple[Path, Path]:
    """Two shard sets with one tokenizer: data-juicer's RedPajama/Pile documents, and dolma's Common Crawl."""
    dolma = [t for name, t in web_texts if name.endswith(".gz")]
    juicer = [t for name, t in web_texts if not name.endswith(".gz")]
    a, b = tmp_path_factory.mktemp("juicer"), tmp_path_factory.mktemp("dolma")
    build_text_shards(a, juicer, web_tokenizer, train_shards=2, validation_shards=1)
    build_text_shards(b, dolma, web_tokenizer, train_shards=1, validation_shards=1)
    return a, b


def token_shards(directory: Path, shard_tokens: list[int], doc_len: int = 50, vocab: int = 1000) -> Path:
    """Shards of counting token ids (where tokenization is irrelevant): token i of shard s is (s*7919+i) % eos."""
    shards = {}
    for s, n in enumerate(shard_tokens):
        ids = (np.arange(n, dtype=np.int64) + s * 7919) % (vocab - 1)
        docs = [ids[i : i + doc_len - 1] for i in range(0, n, doc_len)]
        shards[f"train/part-{s:05d}"] = docs
    write_shard_set(directory, shards, vocab_size=vocab, eos_id=vocab - 1)
    return directory
