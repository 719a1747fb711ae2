"""The shard writer's encoders: tokie must give HF tokenizers' ids exactly, and the run falls back when it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import training.tokenizer.encoders as encoders
from benchmarks.tokenize import web_texts
from training.tokenizer.encoders import HfEncoder, TokieEncoder, check_texts, first_disagreement, resolve

REPO = Path(__file__).resolve().parents[2]
DOLMA_TOKENIZERS = Path("peer-tests/dolma/tests/data/tokenizer")


def _tokenizers(shared: Path) -> list[Path]:
    """Ours (byte-level BPE) and dolma's test tokenizers: Llama's (Metaspace, byte fallback) and GPT-NeoX's."""
    return [
        REPO / "samples" / "tokenizer.json",
        shared / DOLMA_TOKENIZERS / "llama-test-tokenizer.json",
        shared / DOLMA_TOKENIZERS / "gpt-neo-test-tokenizer.json",
    ]


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> list[str]:
    """Main text of the 1,017 real pages of the trafilatura evaluation set (about 40 languages)."""
    return web_texts(archive=shared_data / "web" / "trafilatura_eval" / "trafilatura_tests.tar.xz")


def test_tokie_reproduces_hf_ids_on_real_pages(shared_data, pages):
    for path in _tokenizers(shared_data):
        payload = path.read_text(encoding="utf-8")
        assert first_disagreement(payload, check_texts(payload, pages)) is None, path.name


def test_flat_layout_matches_per_document_ids(shared_data, pages):
    payload = (REPO / "samples" / "tokenizer.json").read_text(encoding="utf-8")
    ids, lengths = TokieEncoder(payload).encode_flat(pages[:20])
    ends = np.cumsum(lengths)
    reference = encoders.tokenizer_from_json(payload)
    for i, text in enumerate(pages[:20]):
        want = reference.encode(text, add_special_tokens=False).ids
        assert ids[ends[i] - lengths[i] : ends[i]].tolist() == want
    hf_ids, hf_lengths = HfEncoder(payload).encode_flat(pages[:20])
    assert np.array_equal(hf_ids, ids) and np.array_equal(hf_lengths, lengths)


def test_check_set_embeds_every_added_token():
    payload = (REPO / "samples" / "tokenizer.json").read_text(encoding="utf-8")
    texts = check_texts(payload, ["a document"])
    assert texts[0] == "a document" and any("<|endoftext|>" in t for t in texts)


def test_resolution_prefers_tokie_and_falls_back_with_the_reason(monkeypatch):
    payload = (REPO / "samples" / "tokenizer.json").read_text(encoding="utf-8")
    sample = ["Hello world, this is a check.", "Zweiter Text mit Umlauten: äöü."]
    assert resolve("hf", payload, sample).encoder == "hf"
    assert resolve("auto", payload, sample).encoder == "tokie"
    assert resolve("tokie", payload, sample).encoder == "tokie"

    real = TokieEncoder.encode_flat

    def off_by_one(self, texts):  # type: ignore[no-untyped-def]
        ids, lengths = real(self, texts)
        ids = ids.copy()
        ids[lengths[0] + 1] += 1  # second token of the second text
        return ids, lengths

    monkeypatch.setattr(TokieEncoder, "encode_flat", off_by_one)
    chosen = resolve("auto", payload, sample)
    assert chosen.encoder == "hf" and "text #1" in chosen.reason and "token 1 differs" in chosen.reason
    with pytest.raises(ValueError, match="encoder: tokie does not reproduce"):
        resolve("tokie", payload, sample)


def test_missing_tokie_falls_back_to_hf(monkeypatch):
    payload = (REPO / "samples" / "tokenizer.json").read_text(encoding="utf-8")

    def absent(_payload):  # type: ignore[no-untyped-def]
        raise ImportError("No module named 'tokie'")

    monkeypatch.setattr(encoders, "_tokie", absent)
    chosen = resolve("auto", payload, ["text"])
    assert chosen.encoder == "hf" and "ImportError" in chosen.reason
