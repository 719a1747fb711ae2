"""The ingest stage in Spark on real files: tables, fixed schemas, reconciled counts, quarantine reasons."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipelines.framework.lake import Lake
from pipelines.framework.stage import StageContext
from pipelines.ingest.readers.schema import DOCUMENTS_SCHEMA, IMAGES_SCHEMA, QUARANTINE_SCHEMA
from pipelines.ingest.stage import Ingest, IngestConfig

TABLES = ("documents", "images", "quarantine")


def _bad_folder(shared: Path, folder: Path) -> None:
    """Damaged copies of real files, made at test time."""
    folder.mkdir()
    (folder / "zero.jsonl").write_bytes(b"")
    jpg = (shared / "images/datajuicer_test_images/cat.jpg").read_bytes()
    (folder / "half.jpg").write_bytes(jpg[: len(jpg) // 2])
    lines = (
        (shared / "web/datajuicer_pretrain_source_samples/redpajama-c4-refined.jsonl")
        .read_bytes()
        .splitlines()
    )
    (folder / "mixed.jsonl").write_bytes(b"\n".join([lines[0], b"[1, 2]", b"\xff\xfe{", lines[1]]) + b"\n")
    warc = (shared / "web/dolma_cc_samples/warc/sample-0001.warc.gz").read_bytes()
    (folder / "cut.warc.gz").write_bytes(warc[: len(warc) // 2])


def _run(spark, lake: Lake, work: Path, inputs: list[dict]) -> tuple[Ingest, dict]:
    stage = Ingest(IngestConfig(inputs=inputs))
    ctx = StageContext(spark=spark, lake=lake, dataset="t", run_id=f"r-{uuid.uuid4().hex[:6]}", work_dir=work)
    result = stage.run(ctx)
    for name, df in result.tables.items():
        lake.write(df, ctx.table(name))
    return stage, result.metrics


@pytest.fixture(scope="module")
def ingested(spark, shared_data: Path, tmp_path_factory):
    base = tmp_path_factory.mktemp("ingest")
    _bad_folder(shared_data, base / "bad")
    web, images = shared_data / "web", shared_data / "images"
    fast = {"extractor": "resiliparse"}
    inputs = [
        {"name": "dj", "path": str(web / "datajuicer_pretrain_source_samples"), "format": "jsonl"},
        {"name": "dolma", "path": str(web / "dolma_cc_samples/multiple_files")},
        # resiliparse keeps this test fast; trafilatura (the default) is covered in test_readers.
        {
            "name": "cc",
            "path": str(web / "cc_warc_resiliparse/warcfile.warc.gz"),
            "format": "warc",
            "options": fast,
        },
        {
            "name": "edge",
            "path": str(web / "warc_format_edge_cases_warcio/*arc*"),
            "format": "warc",
            "options": fast,
        },
        {"name": "img", "path": str(images / "datajuicer_test_images"), "format": "images"},
        {
            "name": "imgpq",
            "path": str(images / "datajuicer_test_images/*.parquet"),
            "format": "image_parquet",
        },
        {"name": "bad", "path": str(base / "bad"), "options": {"warc": fast}},
    ]
    lake = Lake(base / "lake")
    stage, metrics = _run(spark, lake, base / "work", inputs)
    return lake, stage, metrics, base


def _rows_per_file(spark, lake: Lake) -> dict[tuple[str, str], int]:
    from pyspark.sql import functions as F

    counts: dict[tuple[str, str], int] = {}
    for name in TABLES:
        df = lake.read(spark, f"t/{name}").select(
            "source", F.regexp_extract("locator", r"^(.*):[^:]*$", 1).alias("f")
        )
        for row in df.groupBy("source", "f").count().collect():
            key = (row["source"], row["f"])
            counts[key] = counts.get(key, 0) + int(row["count"])
    return counts


def _warc_content_records(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(
            1
            for r in ArchiveIterator(fh, arc2warc=True)
            if r.rec_type in ("response", "resource", "conversion")
        )


def test_tables_have_fixed_schemas_and_counts_reconcile(ingested, spark):
    lake, _, metrics, _ = ingested
    for name, schema in zip(TABLES, (DOCUMENTS_SCHEMA, IMAGES_SCHEMA, QUARANTINE_SCHEMA), strict=True):
        assert lake.arrow_schema(f"t/{name}").names == schema.names
    totals = {name: lake.num_records(f"t/{name}") for name in TABLES}
    assert metrics["records_in"] == sum(totals.values())
    assert sum(metrics["quarantined"].values()) == totals["quarantine"]
    assert metrics["rows"]["dj"] == {"documents": 50}
    assert metrics["rows"]["img"] == {"images": 16}
    assert metrics["rows"]["imgpq"] == {"images": 3}
    assert metrics["files"]["img"] == 16 and metrics["files_ignored"]["img"] == 3  # LICENSE, jsonl, parquet
    docs = lake.read(spark, "t/documents")
    assert docs.select("doc_id").distinct().count() == docs.count()


def test_every_real_file_reconciles_with_an_independent_count(ingested, spark, shared_data: Path):
    lake, stage, _, _ = ingested
    per_file = _rows_per_file(spark, lake)
    for f in stage.listing()[0]:
        if f.source in ("bad", "edge"):  # damaged on purpose: their reasons are checked elsewhere
            continue
        path = Path(f.path)
        if f.format == "jsonl":
            opener = __import__("gzip").open if f.path.endswith(".gz") else open
            with opener(path, "rb") as fh:
                expected = sum(1 for line in fh if line.strip())
        elif f.format == "warc" and f.source == "cc":
            expected = _warc_content_records(path)
        elif f.format == "images":
            expected = 1
        else:
            expected = 3  # the image Parquet file: three rows of one image each
        assert per_file.get((f.source, f.relpath)) == expected, f.relpath


def test_bad_input_is_quarantined_with_reasons(ingested, spark):
    lake, _, metrics, _ = ingested
    rows = (
        lake.read(spark, "t/quarantine")
        .where("source = 'bad'")
        .select("locator", "reason", "stage")
        .collect()
    )
    found = {(r["locator"], r["reason"]) for r in rows}
    assert {("zero.jsonl:0", "empty_file"), ("half.jpg:0", "corrupt_image")} <= found
    assert {("mixed.jsonl:2", "not_an_object"), ("mixed.jsonl:3", "invalid_utf8")} <= found
    assert any(loc.startswith("cut.warc.gz:") and reason == "truncated_record" for loc, reason in found)
    assert {r["stage"] for r in rows} == {"ingest"}
    assert metrics["quarantined"]["malformed_warc"] >= 2  # warcio edge cases
    assert metrics["skipped_records"]["warc_request"] > 0


def test_fingerprint_follows_file_identity(ingested):
    _, stage, _, base = ingested
    again = Ingest(stage.config)
    assert again.source_fingerprint(None) == stage.source_fingerprint(None)  # type: ignore[arg-type]
    copy = base / "copy"
    shutil.copytree(base / "bad", copy)
    config = IngestConfig(inputs=[{"name": "bad", "path": str(copy)}])
    before = Ingest(config).source_fingerprint(None)  # type: ignore[arg-type]
    os.utime(copy / "mixed.jsonl", ns=(1, 1))
    assert Ingest(config).source_fingerprint(None) != before  # type: ignore[arg-type]


def test_all_three_tables_are_written_even_when_empty(spark, shared_data: Path, tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    folder = shared_data / "images/skimage_data"
    _, metrics = _run(spark, lake, tmp_path / "work", [{"name": "sk", "path": str(folder / "coffee.png")}])
    assert {name: lake.num_records(f"t/{name}") for name in TABLES} == {
        "documents": 0,
        "images": 1,
        "quarantine": 0,
    }
    assert lake.arrow_schema("t/documents").names == DOCUMENTS_SCHEMA.names
    assert metrics["records_in"] == 1


def test_config_errors_name_the_field(tmp_path: Path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="text_feld"):
        IngestConfig(inputs=[{"name": "a", "path": "x", "format": "jsonl", "options": {"text_feld": "body"}}])
    with pytest.raises(ValidationError, match="repeated: a"):
        IngestConfig(inputs=[{"name": "a", "path": "x"}, {"name": "a", "path": "y"}])
    with pytest.raises(FileNotFoundError, match="'missing'"):
        Ingest(IngestConfig(inputs=[{"name": "missing", "path": str(tmp_path / "nope")}])).listing()
    assert json.loads(IngestConfig().model_dump_json())["inputs"] == []
