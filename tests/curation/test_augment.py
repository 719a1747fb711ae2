# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""Augmentation: deterministic mixing and noise on real text, Pillow variants of real images, no split leakage."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pydantic import ValidationError

from curation.augment.config import AugmentConfig
from curation.augment.kernel import DOWNSAMPLED, DocumentAugmenter, ImageAugmenter
from curation.augment.stage import Augment
from curation.augment.text import sentence_order, span_deletion
from tests.training.test_shards_fixtures import SCHEMA, corpus_rows, small_tokenizer  # noqa: F401

ALL_TEXT = {
    "span_deletion": {"rate": 0.5},
    "sentence_order": {"rate": 0.5},
    "char_noise": {"rate": 0.5},
    "case": {"rate": 0.5},
}
IMAGES = ("astronaut.png", "chelsea.png", "rocket.jpg", "coffee.png", "camera.png", "hubble_deep_field.jpg")


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> pa.RecordBatch:
    return pa.Table.from_pylist(corpus_rows(shared_data), schema=SCHEMA).combine_chunks().to_batches()[0]


def _run(batch: pa.RecordBatch, **config) -> pa.Table:
    return pa.Table.from_batches([DocumentAugmenter(AugmentConfig(**config), batch.schema)(batch)])


def test_defaults_add_nothing_and_keep_every_row(docs):
    out = _run(docs)
    assert out.num_rows == docs.num_rows
    assert out.column("doc_id").to_pylist() == docs.column("doc_id").to_pylist()
    assert out.column("drop_reason").to_pylist() == docs.column("drop_reason").to_pylist()
    assert out.column("operation").null_count == out.num_rows


def test_mixing_repeats_and_downsamples_deterministically(docs):
    config = {"seed": 7, "mixture": {"source_weights": {"lingua": 2.5, "dolma_cc": 0.5}}}
    out = _run(docs, **config)
    assert out.equals(_run(docs, **config))
    rows = out.to_pylist()
    originals = [r for r in rows if r["augmented_from"] is None]
    assert [r["doc_id"] for r in originals] == docs.column("doc_id").to_pylist()  # rows in = originals out
    before = {r["doc_id"]: r for r in docs.to_pylist()}
    for r in originals:  # earlier reasons are never replaced; only kept rows can be downsampled
        if before[r["doc_id"]]["drop_reason"]:
            assert r["drop_reason"] == before[r["doc_id"]]["drop_reason"]
    down = [r for r in originals if r["drop_reason"] == DOWNSAMPLED]
    assert down and {r["source"] for r in down} == {"dolma_cc"}
    copies = Counter(r["augmented_from"] for r in rows if r["operation"] == "repeat")
    kept_lingua = [r["doc_id"] for r in originals if r["source"] == "lingua" and r["drop_reason"] is None]
    assert all(copies[d] in (1, 2) for d in kept_lingua) and set(copies) == set(kept_lingua)
    assert (
        1.2 < sum(copies.values()) / len(kept_lingua) < 1.8
    )  # 2.5 copies on average: 1 original + 1.5 repeats
    other = _run(docs, **{**config, "seed": 8})
    assert other.column("doc_id").to_pylist() != out.column("doc_id").to_pylist()


def test_quality_buckets_weight_rows(docs):
    config = {"mixture": {"quality_bins": [0.7, 0.8], "quality_weights": [0.0, 1.0, 3.0]}}
    rows = _run(docs, **config).to_pylist()
    for r in rows:
        if r["augmented_from"] is None and r["drop_reason"] == DOWNSAMPLED:
            assert r["quality_score"] < 0.7
        if r["operation"] == "repeat":
            assert r["quality_score"] >= 0.8 and json.loads(r["params"])["weight"] == 3.0
    with pytest.raises(ValidationError, match="quality_weights"):
        AugmentConfig(mixture={"quality_bins": [0.5], "quality_weights": [1.0]})


def test_text_noise_variants_record_their_parent_and_params(docs):
    out = _run(docs, seed=3, text=ALL_TEXT)
    rows = out.to_pylist()
    parents = {r["doc_id"]: r for r in rows if r["augmented_from"] is None}
    variants = [r for r in rows if r["operation"] in ALL_TEXT]
    assert set(Counter(r["operation"] for r in variants)) == set(ALL_TEXT)
    assert len({r["doc_id"] for r in rows}) == len(rows)
    for r in variants:
        parent = parents[r["augmented_from"]]
        assert parent["drop_reason"] is None and r["drop_reason"] is None
        assert r["source"] == parent["source"] and r["lang"] == parent["lang"]
        assert json.loads(r["params"])["seed"] == 3
        if r["operation"] == "case":
            assert r["text"].lower() == parent["text"].lower()
        if r["operation"] == "sentence_order":
            assert sorted(r["text"].split()) == sorted(parent["text"].split())
    assert out.equals(_run(docs, seed=3, text=ALL_TEXT))


def test_text_ops_on_edge_inputs():
    import random

    for lone in ("", "one", "   "):
        assert span_deletion(lone, random.Random(0), {"max_fraction": 0.5}) == (
            lone,
            {"start_word": 0, "words": 0},
        )
    text, params = span_deletion("one two", random.Random(0), {"max_fraction": 0.5})
    assert params["words"] == 1 and text in ("two", "one ")
    for flat in ("", "No sentence end", "One sentence only.", "\n\n"):
        assert sentence_order(flat, random.Random(1), {}) == (flat, {"paragraphs_shuffled": 0})

    original = "A b. C d! E f?\nG h. I j."
    for seed in range(8):
        shuffled, params = sentence_order(original, random.Random(seed), {})
        first, second = shuffled.split("\n")
        # Sentences move only within their paragraph, each kept whole with its own end mark.
        assert sorted(re.split(r"(?<=[.!?]) ", first)) == ["A b.", "C d!", "E f?"]
        assert sorted(re.split(r"(?<=[.!?]) ", second)) == ["G h.", "I j."]
        moved = (first != "A b. C d! E f?") + (second != "G h. I j.")
        assert params["paragraphs_shuffled"] == moved


def _images_batch(shared_data: Path) -> pa.RecordBatch:
    rows = []
    for name in IMAGES:
        data = (shared_data / "images" / "skimage_data" / name).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            fmt, (w, h) = image.format, image.size
        rows.append(
            {
                "image_id": hashlib.sha256(data).hexdigest()[:32],
                "source": "skimage",
                "bytes": data,
                "format": fmt,
                "width": w,
                "height": h,
                "caption": f"skimage sample {name}",
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    rows.append(
        {
            "image_id": "broken",
            "source": "skimage",
            "bytes": b"not an image",
            "format": "PNG",
            "width": 1,
            "height": 1,
            "caption": "broken",
            "sha256": "",
        }
    )
    return pa.RecordBatch.from_pylist(rows)


def test_image_variants_are_recorded_and_reproducible(shared_data):
    batch = _images_batch(shared_data)
    ops = {
        "flip": {"rate": 1.0},
        "crop": {"rate": 1.0},
        "rotation": {"rate": 1.0},
        "color_jitter": {"rate": 1.0},
        "resize": {"rate": 1.0},
        "jpeg": {"rate": 1.0},
    }
    augmenter = ImageAugmenter(AugmentConfig(image=ops), batch.schema)
    out = augmenter(batch)
    assert out.equals(augmenter(batch))
    rows = out.to_pylist()
    originals = {r["image_id"]: r for r in rows if r["augmented_from"] is None}
    assert len(originals) == batch.num_rows
    variants = [r for r in rows if r["augmented_from"]]
    assert len(variants) == len(IMAGES) * len(ops)  # the undecodable row is passed through, not varied
    for r in variants:
        parent, params = originals[r["augmented_from"]], json.loads(r["params"])
        image = Image.open(io.BytesIO(r["bytes"]))
        assert (image.width, image.height) == (r["width"], r["height"])
        assert r["caption"] == parent["caption"] and r["sha256"] == hashlib.sha256(r["bytes"]).hexdigest()
        if r["operation"] == "flip":
            original = Image.open(io.BytesIO(parent["bytes"]))
            if original.format == "PNG":
                assert (
                    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).tobytes()
                    == original.convert(image.mode).tobytes()
                )
        if r["operation"] == "crop":
            left, top, right, bottom = params["box"]
            assert (right - left, bottom - top) == (r["width"], r["height"])
        if r["operation"] == "jpeg":
            assert r["format"] == "JPEG" and 30 <= params["quality"] <= 90
        if r["operation"] == "resize":
            assert params["size"] == [r["width"], r["height"]]


def test_stage_variants_never_cross_the_split(stage_ctx, lake, shared_data, small_tokenizer):
    from training.shards.config import ShardsConfig
    from training.shards.format import Manifest, shard_paths
    from training.shards.stage import Shards

    lake.write_arrow(pa.Table.from_pylist(corpus_rows(shared_data), schema=SCHEMA), "test/curated")
    stage = Augment(AugmentConfig(seed=5, mixture={"source_weights": {"lingua": 2.0}}, text=ALL_TEXT))
    result = stage.run(stage_ctx)
    lake.write(result.tables["augmented"], "test/augmented")
    counts = result.metrics["documents"]
    assert counts["original"] == len(corpus_rows(shared_data)) and counts["repeat"] > 0
    Shards(ShardsConfig(input="augmented", tokenizer=str(small_tokenizer), validation_fraction=0.3)).run(
        stage_ctx
    )
    folder = lake.root / "shards" / "default"
    split_of: dict[str, set[str]] = {}
    table = lake.dataset("test/augmented").to_table(columns=["doc_id", "augmented_from"])
    family = {
        d: p or d
        for d, p in zip(table["doc_id"].to_pylist(), table["augmented_from"].to_pylist(), strict=True)
    }
    for entry in Manifest.load(folder).shards:
        ids = pq.read_table(shard_paths(folder, entry.name)[2], columns=["doc_id"])["doc_id"].to_pylist()
        for doc_id in ids:
            split_of.setdefault(family[doc_id], set()).add(entry.split)
    assert all(len(splits) == 1 for splits in split_of.values())
    assert {s for splits in split_of.values() for s in splits} == {"train", "validation"}
    assert pc.sum(pc.is_valid(table["augmented_from"])).as_py() > 0
