"""The dedup stages on real data: marks, row accounting, incremental runs, agreement with datasketch LSH."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasketch import MinHash, MinHashLSH

from dedup.kernels.lines import line_hashes
from dedup.kernels.minhash import MinHashSpec, from_binary, signatures
from dedup.near_duplicates import near_duplicates
from dedup.stages import ExactDedup, ImageDedup, LineDedup, MinHashDedup


def _perturbed_corpus(texts: list[str], n: int, seed: int = 0) -> list[dict]:
    """Real pages plus copies with 0-8% of their words replaced: Jaccard from 1 down to ~0.5, across the threshold."""
    rng = random.Random(seed)
    rows = [{"doc_id": f"p{i:04d}", "text": t} for i, t in enumerate(texts[:n])]
    for i, text in enumerate(texts[:n]):
        if i % 3:
            continue
        words = text.split()
        for copy in range(2):
            edited = list(words)
            for j in rng.sample(range(len(edited)), int(len(edited) * rng.uniform(0, 0.08))):
                edited[j] = rng.choice(words)
            rows.append({"doc_id": f"c{i:04d}{copy}", "text": " ".join(edited)})
    return rows


def _reference_removed(rows: list[dict], spec: MinHashSpec) -> set[str]:
    """datasketch MinHashLSH over the same signatures and bands, then a single-node union-find."""
    sigs = signatures(pa.array([r["text"] for r in rows]), spec)
    lsh = MinHashLSH(num_perm=spec.num_perm, params=(spec.bands, spec.rows))
    ids = [r["doc_id"] for r in rows]
    minhashes = {}
    for doc_id, sig in zip(ids, sigs.to_pylist(), strict=True):
        if sig is None:
            continue
        values = from_binary(pa.array([sig]), spec.num_perm)[0]
        m = MinHash(num_perm=spec.num_perm, seed=spec.seed, hashvalues=values, scheme="affine32")
        lsh.insert(doc_id, m)
        minhashes[doc_id] = m
    parent = {d: d for d in minhashes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for doc_id, m in minhashes.items():
        for other in lsh.query(m):
            a, b = find(doc_id), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {d for d in minhashes if find(d) != d}


def test_minhash_agrees_exactly_with_datasketch_lsh_union_find(stage_ctx, lake, web_texts) -> None:
    rows = _perturbed_corpus(web_texts, 300)
    spec = MinHashSpec()
    expected = _reference_removed(rows, spec)
    lake.write(stage_ctx.spark.createDataFrame(rows), stage_ctx.table("deduped"))
    result = MinHashDedup(MinHashDedup.Config()).run(stage_ctx)
    out = result.tables["deduped"]
    removed = {r["doc_id"] for r in out.where("drop_reason = 'near_duplicate'").select("doc_id").collect()}
    assert len(expected) > 50
    assert removed == expected
    assert out.count() == len(rows)
    clusters = out.where("dup_cluster IS NOT NULL").select("doc_id", "dup_cluster").collect()
    assert all(r["dup_cluster"] <= r["doc_id"] for r in clusters), "the smallest doc_id represents a cluster"


def test_incremental_minhash_existing_documents_win(stage_ctx, lake, web_texts) -> None:
    spark = stage_ctx.spark
    curated = [{"doc_id": f"z{i:03d}", "text": t} for i, t in enumerate(web_texts[:40])]
    lake.write(spark.createDataFrame(curated), stage_ctx.table("batch0"))
    first = MinHashDedup(MinHashDedup.Config(input="batch0", output="curated")).run(stage_ctx)
    lake.write(first.tables["curated"], stage_ctx.table("curated"))
    # The new batch: copies of corpus pages (named to sort first) and fresh pages, one of them twice.
    new = [{"doc_id": f"a{i:03d}", "text": curated[i]["text"] + " extra"} for i in range(5)]
    new += [{"doc_id": f"n{i:03d}", "text": t} for i, t in enumerate(web_texts[100:110])]
    new.append({"doc_id": "n999", "text": web_texts[100]})
    lake.write(spark.createDataFrame(new), stage_ctx.table("batch1"))
    stage = MinHashDedup(MinHashDedup.Config(input="batch1", output="batch1_deduped", against="curated"))
    assert stage.input_tables() == ["batch1", "curated"]
    out = stage.run(stage_ctx).tables["batch1_deduped"]
    marks = {r["doc_id"]: (r["drop_reason"], r["dup_cluster"]) for r in out.collect()}
    assert len(marks) == len(new)
    for i in range(5):
        assert marks[f"a{i:03d}"] == ("near_duplicate", f"z{i:03d}")
    assert marks["n999"] == ("near_duplicate", "n000")
    assert sum(reason is None for reason, _ in marks.values()) == 10


def test_exact_then_near_on_datajuicer_demo(stage_ctx, lake, shared_data: Path) -> None:
    path = shared_data / "dedup/datajuicer_demo_dedup/demo-dataset-deduplication.jsonl"
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    rows = [{"doc_id": f"{i:02d}", "text": t} for i, t in enumerate(texts)]
    lake.write(stage_ctx.spark.createDataFrame(rows), stage_ctx.table("documents"))
    exact = ExactDedup(ExactDedup.Config()).run(stage_ctx).tables["deduped"]
    lake.write(exact, stage_ctx.table("deduped"))
    exact_marks = {r["doc_id"]: r["dup_of"] for r in exact.where("drop_reason = 'exact_duplicate'").collect()}
    assert exact_marks and all(texts[int(d)].lower() == texts[int(o)].lower() for d, o in exact_marks.items())
    near = MinHashDedup(MinHashDedup.Config()).run(stage_ctx).tables["deduped"]
    reasons = {r["doc_id"]: r["drop_reason"] for r in near.collect()}
    assert len(reasons) == len(rows)
    assert {d for d, r in reasons.items() if r == "exact_duplicate"} == set(exact_marks)
    assert "near_duplicate" in reasons.values()
    # Two Smithfield families: the full article twice (J 0.99) and a shorter version twice (J 0.98);
    # the families share J 0.51, where 14 x 8 bands rarely collide (P = 0.06).
    assert [reasons[d] for d in ("07", "08", "09", "10")] == [None, "near_duplicate", None, "near_duplicate"]


def _line_hash(lines: list[str]) -> list[int | None]:
    """Each line's hash (None for a line that normalizes to nothing), in one kernel call."""
    return [h[0] if h else None for h in line_hashes(pa.array(lines)).to_pylist()]


def test_line_dedup_removes_lines_shared_by_many_pages(stage_ctx, lake, web_texts) -> None:
    pages = web_texts[:120]
    counts: dict[int, int] = {}
    for doc in line_hashes(pa.array(pages)).to_pylist():
        for h in doc:
            counts[h] = counts.get(h, 0) + 1
    frequent = {h for h, n in counts.items() if n >= 3}
    assert frequent, "real pages from the same sites share navigation lines"
    first = pages[0].split("\n")
    boiler_only = "\n".join(line for line, h in zip(first, _line_hash(first), strict=True) if h in frequent)
    rows = [{"doc_id": f"w{i:03d}", "text": t} for i, t in enumerate(pages)]
    if boiler_only:
        rows.append({"doc_id": "boiler", "text": boiler_only})
    lake.write(stage_ctx.spark.createDataFrame(rows), stage_ctx.table("deduped"))
    result = LineDedup(LineDedup.Config(min_docs=3)).run(stage_ctx)
    out = {r["doc_id"]: r for r in result.tables["deduped"].collect()}
    assert len(out) == len(rows)
    left = line_hashes(pa.array([out[f"w{i:03d}"]["text"] for i in range(len(pages))])).to_pylist()
    for i, page in enumerate(pages):
        row = out[f"w{i:03d}"]
        assert not set(left[i]) & frequent or row["drop_reason"] is not None
        lines = page.split("\n")
        assert row["lines_removed"] == sum(h in frequent for h in _line_hash(lines))
    assert result.metrics["repeated_lines"] >= len(frequent)
    if boiler_only:
        assert out["boiler"]["drop_reason"] == "boilerplate_only"


def test_image_dedup_md5_groups_and_no_false_groups(stage_ctx, lake, shared_data: Path) -> None:
    import hashlib

    folders = [shared_data / "images/datajuicer_test_images", shared_data / "images/coco_mini"]
    files = sorted(p for f in folders for p in f.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".jpeg"))
    rows = [
        {"image_id": f"i{k:04d}", "source": "test", "uri": str(p), "locator": p.name, "bytes": p.read_bytes()}
        for k, p in enumerate(files)
    ]
    truncated = files[0].read_bytes()[:300]
    rows.append(
        {"image_id": "broken", "source": "test", "uri": "cut.jpg", "locator": "cut.jpg", "bytes": truncated}
    )
    lake.write(stage_ctx.spark.createDataFrame(rows), stage_ctx.table("images"))
    result = ImageDedup(ImageDedup.Config()).run(stage_ctx)
    out = {r["image_id"]: r for r in result.tables["images_deduped"].drop("bytes").collect()}
    quarantine = result.tables["quarantine"].collect()
    assert [q["locator"] for q in quarantine] == ["cut.jpg"] and "corrupt image" in quarantine[0]["reason"]
    assert len(out) + len(quarantine) == len(rows)
    md5: dict[str, list[str]] = {}
    for row, path in zip(rows, files, strict=False):
        md5.setdefault(hashlib.md5(path.read_bytes()).hexdigest(), []).append(row["image_id"])
    for group in (g for g in md5.values() if len(g) > 1):
        assert len({out[i]["dup_cluster"] for i in group}) == 1
        assert sum(out[i]["drop_reason"] is None for i in group) == 1
    coco = {row["image_id"] for row, p in zip(rows, files, strict=False) if "coco_mini" in str(p)}
    clusters: dict[str, set[str]] = {}
    for image_id, row in out.items():
        if row["dup_cluster"]:
            clusters.setdefault(row["dup_cluster"], set()).add(image_id)
    assert all(not (members & coco) for members in clusters.values()), (
        "no duplicate groups among distinct photos"
    )
    assert result.metrics["corrupt_images"] == 1


def test_stage_configs_name_bad_fields() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="bands"):
        MinHashDedup.Config(bands=20, rows=8)
    with pytest.raises(ValidationError, match="together"):
        MinHashDedup.Config(bands=14)
    with pytest.raises(ValidationError, match="verify needs threshold"):
        MinHashDedup.Config(verify=True)
    assert (
        MinHashDedup.Config(threshold=0.8).spec().bands * MinHashDedup.Config(threshold=0.8).spec().rows
        <= 112
    )
    assert np.isclose(MinHashDedup.Config().spec().num_perm, 112)


def test_near_duplicates_skips_dropped_rows(spark, web_texts) -> None:
    rows = [("a", web_texts[0], "language"), ("b", web_texts[0], None), ("c", web_texts[0], None)]
    df = spark.createDataFrame(rows, "doc_id string, text string, drop_reason string")
    out, _ = near_duplicates(df, MinHashSpec())
    marks = {r["doc_id"]: (r["drop_reason"], r["dup_cluster"]) for r in out.collect()}
    assert marks == {"a": ("language", None), "b": (None, "b"), "c": ("near_duplicate", "b")}
