"""datatrove's and data-juicer's dedup test cases, run through our stages with their inputs and expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from dedup.config import ExactDedupConfig
from dedup.exact_duplicates import exact_duplicates
from dedup.kernels.images import fingerprint
from dedup.kernels.minhash import MinHashSpec
from dedup.kernels.shingles import TextNorm
from dedup.near_duplicates import near_duplicates
from tests.dedup.peer_cases import assigned, datajuicer_cases

DATATROVE = "peer-tests/datatrove/tests/pipeline/dedup"
DATAJUICER = "peer-tests/data_juicer/tests/ops/deduplicator"


def _kept(df, column: str = "doc_id") -> list:
    return [r[column] for r in df.where("drop_reason IS NULL").orderBy("_order").select(column).collect()]


def _frame(spark, rows: list[dict]):
    return spark.createDataFrame([{**r, "_order": i} for i, r in enumerate(rows)])


def _exact(spark, rows, against=None, **params):
    existing = _frame(spark, against) if against is not None else None
    return exact_duplicates(_frame(spark, rows), ExactDedupConfig(**params), existing)


# ------------------------------------------------------------------------------------------ datatrove
def _url_docs(shared_data: Path, name: str) -> list[dict]:
    docs = assigned(
        shared_data / DATATROVE / "test_exact_deduplication.py", name, constructors={"Document": dict}
    )
    return [{"doc_id": d["id"], "uri": d["metadata"]["url"], "text": d["text"]} for d in docs]


EXACT_OFF = {"nfc": False, "collapse_whitespace": False, "casefold": False}


def test_datatrove_url_dedup(spark, shared_data: Path) -> None:
    docs = _url_docs(shared_data, "DOCS")
    out = _exact(spark, docs, key="uri", **EXACT_OFF)
    assert _kept(out) == ["1", "3", "5"]
    assert {r["doc_id"]: r["dup_of"] for r in out.where("dup_of IS NOT NULL").collect()} == {
        "2": "1",
        "4": "1",
    }
    assert out.count() == len(docs)


def test_datatrove_priority_highest_and_lowest_id(spark, shared_data: Path) -> None:
    docs = _url_docs(shared_data, "DOCS")
    highest = _exact(spark, docs, key="uri", priority="int(doc_id)", **EXACT_OFF)
    assert set(_kept(highest)) == {"3", "4", "5"}
    lowest = _exact(spark, docs, key="uri", priority="6 - int(doc_id)", **EXACT_OFF)
    assert set(_kept(lowest)) == {"1", "3", "5"}


def test_datatrove_key_normalization(spark, shared_data: Path) -> None:
    out = _exact(spark, _url_docs(shared_data, "DOCS"), key="replace(uri, '2', '')", **EXACT_OFF)
    assert {r["uri"] for r in out.where("drop_reason IS NULL").collect()} == {
        "https://example.com",
        "https://new-site.com",
    }


def test_datatrove_dedup_against_index(spark, shared_data: Path) -> None:
    docs = _url_docs(shared_data, "DOCS")
    index = [{**d, "doc_id": f"index-{d['doc_id']}"} for d in _url_docs(shared_data, "INDEX")]
    out = _exact(spark, docs, against=index, key="uri", **EXACT_OFF)
    assert [r["uri"] for r in out.where("drop_reason IS NULL").collect()] == ["https://new-site.com"]
    assert out.count() == len(docs)


def test_datatrove_minhash_clusters(spark, shared_data: Path) -> None:
    """datatrove's test_buckets_and_cluster: overlapping lorem-ipsum windows, one survivor per cluster."""
    path = shared_data / DATATROVE / "test_minhash.py"
    lorem = assigned(path, "lorem_ipsum")
    clusters = assigned(path, "clusters", function="test_buckets_and_cluster")
    rows = [
        {"doc_id": f"{ci}_{xi}", "text": lorem[x : x + 400]}
        for ci, cluster in enumerate(clusters)
        for xi, x in enumerate(cluster)
    ]
    out, metrics = near_duplicates(_frame(spark, rows), MinHashSpec(num_perm=112, bands=14, rows=8))
    kept = _kept(out)
    assert sorted(k.split("_")[0] for k in kept) == [str(i) for i in range(len(clusters))]
    assert kept == [f"{ci}_0" for ci in range(len(clusters))], "the smallest doc_id represents its cluster"
    assert metrics["clusters"] == sum(len(c) > 1 for c in clusters)
    assert out.count() == len(rows)


# ---------------------------------------------------------------------------------------- data-juicer
def _texts(rows) -> list[str]:
    return [r["text"] for r in rows]


@pytest.mark.parametrize(
    "case",
    [
        "test_english_deduplication",
        "test_english_deduplication_with_params",
        "test_chinese_deduplication",
        "test_show_num",
    ],
)
def test_datajuicer_document_deduplicator(spark, shared_data: Path, case: str) -> None:
    [peer] = [
        c
        for c in datajuicer_cases(
            shared_data / DATAJUICER / "test_document_deduplicator.py", "DocumentDeduplicator"
        )
        if c.name == case
    ]
    rows = [{"doc_id": f"{i:03d}", "text": r["text"]} for i, r in enumerate(peer.inputs)]
    out = _exact(
        spark,
        rows,
        casefold=peer.params["lowercase"],
        letters_only=peer.params["ignore_non_character"],
        collapse_whitespace=False,
        nfc=False,
    )
    assert _kept(out, "text") == _texts(peer.expected)


@pytest.mark.parametrize("case", ["test_english_deduplication", "test_chinese_deduplication"])
def test_datajuicer_minhash_deduplicator(spark, shared_data: Path, case: str) -> None:
    [peer] = [
        c
        for c in datajuicer_cases(
            shared_data / DATAJUICER / "test_document_minhash_deduplicator.py", "DocumentMinhashDeduplicator"
        )
        if c.name == case
    ]
    # data-juicer's defaults: lowercase, 5-grams, 256 permutations, Jaccard 0.7; \p{P} removed.
    tokenization = "chars" if peer.params.get("tokenization") == "character" else "words"
    spec = MinHashSpec.for_threshold(
        0.7,
        256,
        ngram=5,
        tokenization=tokenization,
        norm=TextNorm(lowercase=True, numbers=False, punctuation=True, diacritics=False),
    )
    rows = [{"doc_id": f"{i:03d}", "text": r["text"]} for i, r in enumerate(peer.inputs)]
    out, _ = near_duplicates(_frame(spark, rows), spec, verify_threshold=0.7)
    assert _kept(out, "text") == _texts(peer.expected)


def test_datajuicer_image_deduplicator(spark, shared_data: Path) -> None:
    """Every data-juicer image case: a sample's key is its images' pixel hashes in order (+ text if asked).

    All cases run in one exact-dedup pass, their keys prefixed with the case name.
    """
    images = shared_data / "images/datajuicer_test_images"
    pixels = {
        f"img{i}": fingerprint((images / f"img{i}{'.png' if i in (1, 4) else '.jpg'}").read_bytes())[0]
        for i in range(1, 8)
    }
    cases = datajuicer_cases(shared_data / DATAJUICER / "test_image_deduplicator.py", "ImageDeduplicator")
    assert len(cases) >= 10
    rows = []
    for c, peer in enumerate(cases):
        for i, sample in enumerate(peer.inputs):
            key = "|".join(pixels[name] for name in sample["images"])
            if peer.params.get("consider_text", False):
                key += "|" + sample.get("text", "")
            elif not sample["images"]:
                key = f"unique-{i}"  # without images and text, a sample duplicates nothing
            rows.append({"doc_id": f"{c:02d}-{i:03d}", "key": f"{peer.name}|{key}"})
    kept = _kept(_exact(spark, rows, key="key", **EXACT_OFF))
    for c, peer in enumerate(cases):
        survivors = [int(d.split("-")[1]) for d in kept if d.startswith(f"{c:02d}-")]
        fields = list(peer.expected[0]) if peer.expected else []
        assert [{k: peer.inputs[i][k] for k in fields} for i in survivors] == peer.expected, peer.name
