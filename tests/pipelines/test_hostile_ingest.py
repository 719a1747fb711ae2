"""Hostile input through a real run (Runner + the Spark ingest stage): names that are not UTF-8,
a binary .jsonl, a flood of bad lines, a gzip bomb and a WARC of unwanted records, built by the
test. The run succeeds, every record is accounted for, and the skips reach the run record."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import yaml
from warcio.archiveiterator import ArchiveIterator

from jobs.report import build_run_report
from jobs.web.render import render_static_report
from pipelines.framework.lake import Lake
from pipelines.framework.runner import Runner
from pipelines.framework.spec import load_spec
from pipelines.ingest.readers import CAPPED, MAX_QUARANTINE_ROWS
from tests.pipelines.hostile_files import MB, bomb_line, build_warc, repeated_members


def _hostile_folder(folder: Path) -> dict[str, int]:
    """The files, and how many records each holds, counted as the test writes them."""
    folder.mkdir()
    records: dict[str, int] = {}
    (folder / os.fsdecode(b"caf\xe9.jsonl")).write_bytes(
        b'{"text": "un caf\xc3\xa9"}\n{"text": 1}\n{"text": "deux"}\n'
    )
    records["caf"] = 3
    (folder / os.fsdecode(b"\xff\xfe\x1b]0;owned\x07.txt")).write_bytes(b"A note whose name is hostile.\n")
    records["note"] = 1
    rng = random.Random(5)
    (folder / "photo.jsonl").write_bytes(bytes(rng.getrandbits(8) for _ in range(100_000)))
    records["photo"] = 1
    good = [json.dumps({"text": f"line {i}"}).encode() for i in range(20)]
    bad = [b"{broken " + str(i).encode() for i in range(400)]
    (folder / "flood.jsonl").write_bytes(b"\n".join(good + bad) + b"\n")
    records["flood"] = 420
    repeated_members(folder / "bomb.jsonl.gz", gzip.compress, bomb_line(), 100, min_size=MB)
    records["bomb"] = 1
    warc = folder / "crawl.warc.gz"
    build_warc(warc, max_doc_bytes=MB)
    with open(warc, "rb") as fh:
        records["warc"] = sum(1 for _ in ArchiveIterator(fh))
    return records


def _spec(tmp_path: Path) -> Path:
    """A job of one ingest stage over the hostile folder, WARCs extracted with resiliparse."""
    source = {"name": "h", "path": str(tmp_path / "in"), "options": {"warc": {"extractor": "resiliparse"}}}
    spec = {
        "name": "hostile",
        "lake": str(tmp_path / "lake"),
        "spark": {"master": "local[2]"},
        "stages": [{"stage": "ingest", "params": {"max_doc_bytes": MB, "inputs": [source]}}],
    }
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_hostile_files_ingest_in_a_real_run(spark, tmp_path: Path):
    records = _hostile_folder(tmp_path / "in")
    path = _spec(tmp_path)
    job, stages = load_spec(path)
    record = Runner(job, stages, spec_path=str(path), spark=spark, progress=False).run()
    assert record.status == "succeeded", record.error
    ingest = record.stages[0]
    assert ingest.reconciled is True
    metrics = ingest.metrics

    quarantined = metrics["quarantined"]
    assert quarantined["binary_file"] == 1
    assert quarantined["compression_bomb"] == 1
    assert quarantined[CAPPED] == 1
    assert metrics["quarantine_folded"] == {"malformed_json": 400 - MAX_QUARANTINE_ROWS}
    assert ingest.skipped == metrics["skipped_records"]
    assert ingest.skipped["dns"] == 1 and ingest.skipped["content_css"] == 1
    assert ingest.summary()["skipped"] == ingest.skipped  # what stats.json and the report show
    # Every record the test wrote is a document, an image, a quarantine row, folded or skipped.
    assert metrics["records_read"] == sum(records.values())
    capped = quarantined[CAPPED]
    assert metrics["records_in"] == sum(ingest.rows_out.values())
    assert metrics["records_read"] == (
        metrics["records_in"]
        - capped
        + sum(metrics["quarantine_folded"].values())
        + sum(ingest.skipped.values())
    )

    lake = Lake(tmp_path / "lake")
    docs = lake.read(spark, f"{record.dataset}/documents").select("locator", "meta").collect()
    by_locator = {row["locator"]: json.loads(row["meta"]) for row in docs}
    assert bytes.fromhex(by_locator["caf\\xe9.jsonl:1"]["path_hex"]) == b"caf\xe9.jsonl"
    assert "\\xff\\xfe\\x1b]0;owned\\x07.txt:0" in by_locator
    quarantine = lake.read(spark, f"{record.dataset}/quarantine").select("locator", "reason").collect()
    assert ("caf\\xe9.jsonl:2", "text_not_a_string") in {(r["locator"], r["reason"]) for r in quarantine}
    # The report shows the skips beside the quarantine count.
    report = build_run_report(spark, tmp_path / "lake", record.run_id)
    assert report["funnel"][0]["skipped"] == ingest.skipped
    html = render_static_report(report)
    assert "dns=1" in html and "content_css=1" in html and "warc_request=1" in html
    # Resume works on such names too: the fingerprint hashes their bytes.
    again = Runner(job, stages, spec_path=str(path), spark=spark, progress=False).run()
    assert [s.status for s in again.stages] == ["skipped"]
