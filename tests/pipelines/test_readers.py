"""Readers on the real files of ../shared/data and on damaged copies of them (no Spark)."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from pipelines.ingest.html_text import decode_bytes
from pipelines.ingest.readers import detect_format, read_file
from pipelines.ingest.readers.base import FileTask
from pipelines.ingest.readers.jsonl import JsonLinesError, json_lines
from pipelines.ingest.readers.schema import RECORD_SCHEMA, to_batches

CONTENT = {"response", "resource", "conversion"}
KNOWN_REASONS = {
    "empty_text",
    "malformed_warc",
    "truncated_record",
    "unsupported_format",
    "missing_text_field",
    "unidentified_image",
}


def read(path: Path, root: Path, fmt: str | None = None, **kwargs) -> list[dict]:
    fmt = fmt or detect_format(str(path)) or "unknown"
    return list(read_file(FileTask("test", str(path), os.path.relpath(path, root), fmt, **kwargs)))


def kinds(rows: list[dict]) -> Counter:
    return Counter((r["kind"], r.get("reason")) for r in rows if r["kind"] != "skipped")


def content_records(path: Path) -> tuple[int, int]:
    """(content records, protocol records) of a WARC counted by warcio directly."""
    content = other = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, arc2warc=True):
            crawler_log = (record.rec_headers.get_header("WARC-Target-URI") or "").startswith("metadata://")
            if record.rec_type in CONTENT and not crawler_log:
                content += 1
            else:
                other += 1
    return content, other


def test_every_shared_web_and_image_file_reads_without_error(shared_data: Path):
    """Auto-detected formats over every file: no reader error, every outcome has a known reason."""
    seen: Counter = Counter()
    for top in ("web", "images"):
        for path in sorted((shared_data / top).rglob("*")):
            if path.is_file():
                rows = read(path, shared_data)
                assert rows, path
                seen.update(r.get("reason") for r in rows if r["kind"] == "quarantine")
                pa.Table.from_batches(
                    list(to_batches(rows)), schema=RECORD_SCHEMA
                )  # every row fits the schema
    assert "reader_error" not in seen
    assert set(seen) <= KNOWN_REASONS, seen


@pytest.mark.parametrize(
    ("name", "pages"),
    [
        ("cc_warc_resiliparse/warcfile.warc.gz", 16),
        ("cc_warc_resiliparse/clueweb-quirk.warc.gz", 29),
        ("dolma_cc_samples/warc/sample-0000.warc.gz", 22),
        ("cc_whirlwind_single_page/whirlwind.warc.wet.gz", 1),
        ("cc_whirlwind_single_page/whirlwind.warc.wat.gz", 0),
    ],
)
def test_warc_counts_reconcile_with_warcio(shared_data: Path, name: str, pages: int):
    """Content records = documents + quarantine + content records skipped as unwanted; protocol
    records are all skipped; and the pages kept are the ones ingested before skipping existed."""
    path = shared_data / "web" / name
    content, protocol = content_records(path)
    rows = read(path, shared_data, "warc", options={"extractor": "resiliparse"})
    produced = sum(1 for r in rows if r["kind"] in ("document", "quarantine"))
    skips = {r["reason"]: json.loads(r["meta"])["count"] for r in rows if r["kind"] == "skipped"}
    protocol_skips = sum(n for reason, n in skips.items() if reason.startswith("warc_"))
    assert (produced + sum(skips.values()) - protocol_skips, protocol_skips) == (content, protocol)
    assert sum(1 for r in rows if r["kind"] == "document") == pages
    docs = [r for r in rows if r["kind"] == "document"]
    assert all(r["uri"].startswith("http") for r in docs)
    # ClueWeb09's WARC-Date values are invalid ("2008-10-294T..."): kept as null, not guessed.
    assert all((r["fetched_at"] is None) == ("clueweb" in name) for r in docs)


def test_clueweb_euc_jp_comes_out_as_readable_japanese(shared_data: Path):
    rows = read(shared_data / "web/cc_warc_resiliparse/clueweb-quirk.warc.gz", shared_data, "warc")
    docs = [r for r in rows if r["kind"] == "document"]
    assert len(docs) == 29
    for doc in docs:
        text = doc["text"]
        japanese = sum(1 for c in text if "\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff")
        assert "\ufffd" not in text
        assert japanese > 0.3 * len(text.replace(" ", "").replace("\n", "")), text[:200]
        assert json.loads(doc["meta"])["encoding"] == "euc_jp"


def test_warcio_edge_cases_recovered_or_quarantined(shared_data: Path):
    folder = shared_data / "web/warc_format_edge_cases_warcio"
    outcome = {p.name: kinds(read(p, folder, "warc")) for p in sorted(folder.iterdir()) if "arc" in p.name}
    # Whole-file gzip (not one member per record): re-read decompressed, the page is kept.
    assert outcome["example-bad-non-chunked.warc.gz"] == Counter({("document", None): 1})
    assert outcome["example.warc.gz"] == outcome["example.warc"] == Counter({("document", None): 1})
    assert outcome["example.arc.gz"] == Counter({("document", None): 1})
    assert outcome["example-wrong-chunks.warc.gz"][("quarantine", "malformed_warc")] == 1
    assert outcome["bad.arc"][("quarantine", "malformed_warc")] == 1
    # JSON responses are valid records we do not want: skipped and counted, not quarantined.
    assert outcome["post-test.warc.gz"] == Counter()
    post = read(folder / "post-test.warc.gz", folder, "warc")
    assert {r["reason"]: json.loads(r["meta"])["count"] for r in post} == {
        "content_other": 3,
        "warc_request": 3,
    }
    for name, counts in outcome.items():
        assert ("quarantine", "reader_error") not in counts, name


def test_truncated_warc_keeps_records_before_the_cut(shared_data: Path, tmp_path: Path):
    source = shared_data / "web/dolma_cc_samples/warc/sample-0000.warc.gz"
    data = source.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    full = [
        r
        for r in read(source, source.parent, "warc", options={"extractor": "resiliparse"})
        if r["kind"] == "document"
    ]
    rows = read(cut, tmp_path, "warc", options={"extractor": "resiliparse"})
    docs = [r for r in rows if r["kind"] == "document"]
    bad = [r for r in rows if r["kind"] == "quarantine"]
    assert [r["reason"] for r in bad] == ["truncated_record"]
    cut_at = int(bad[0]["locator"].rsplit(":", 1)[1])
    assert 0 < cut_at < len(data) // 2
    kept = [r for r in full if int(r["locator"].rsplit(":", 1)[1]) < cut_at]
    assert [d["text"] for d in docs] == [d["text"] for d in kept]
    assert [d["id"] for d in docs] != [d["id"] for d in kept]  # ids name the file they came from


def test_jsonl_real_files(shared_data: Path):
    folder = shared_data / "web/datajuicer_pretrain_source_samples"
    for path in sorted(folder.glob("*.jsonl")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = read(path, folder)
        assert kinds(rows) == Counter({("document", None): len(lines)})
        objects = [json.loads(line) for line in lines]
        assert [r["text"] for r in rows] == [o.pop("text") for o in objects]
        assert [json.loads(r["meta"]) for r in rows] == objects
    dolma = shared_data / "web/dolma_cc_samples/multiple_files/cc_en_head-0091.jsonl.gz"
    rows = read(dolma, dolma.parent, options={"id_field": "id"})
    assert len(rows) == len(gzip.decompress(dolma.read_bytes()).splitlines())
    assert json.loads(rows[0]["meta"])["metadata"]["language"] == "en"


def test_doc_ids_are_stable_and_distinct(shared_data: Path):
    path = shared_data / "web/datajuicer_pretrain_source_samples/the-pile-nih-refined.jsonl"
    first = [r["id"] for r in read(path, path.parent)]
    assert first == [r["id"] for r in read(path, path.parent)]
    assert len(set(first)) == len(first)
    assert set(first).isdisjoint(r["id"] for r in read(path, path.parent.parent))


def test_jsonl_bad_lines_are_quarantined_and_the_rest_kept(shared_data: Path, tmp_path: Path):
    real = (
        (shared_data / "web/datajuicer_pretrain_source_samples/redpajama-c4-refined.jsonl")
        .read_bytes()
        .splitlines()
    )
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                real[0],
                b'["not", "an", "object"]',
                b'{"text": "cut',
                real[1].replace(b"a", b"\xff\xfe", 1),
                b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                b"",
                real[2],
            ]
        )
        + b"\n"
    )
    rows = read(path, tmp_path)
    assert [(r["kind"], r.get("reason"), r["locator"]) for r in rows] == [
        ("document", None, "mixed.jsonl:1"),
        ("quarantine", "not_an_object", "mixed.jsonl:2"),
        ("quarantine", "malformed_json", "mixed.jsonl:3"),
        ("quarantine", "invalid_utf8", "mixed.jsonl:4"),
        ("quarantine", "malformed_json", "mixed.jsonl:5"),  # nested past the parser's stack
        ("document", None, "mixed.jsonl:7"),
    ]
    assert all(len(r["excerpt"]) <= 200 for r in rows if r["kind"] == "quarantine")


def test_fifty_megabyte_line_is_oversize_and_reading_goes_on(shared_data: Path, tmp_path: Path):
    real = (
        (shared_data / "web/datajuicer_pretrain_source_samples/the-pile-uspto-refined.jsonl")
        .read_bytes()
        .splitlines()
    )
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as fh:
        fh.write(real[0] + b"\n")
        fh.write(b'{"text": "' + b"x" * (50 << 20) + b'"}\n')
        fh.write(real[1] + b"\n")
    rows = read(path, tmp_path)
    assert [(r["kind"], r.get("reason")) for r in rows] == [
        ("document", None),
        ("quarantine", "oversize"),
        ("document", None),
    ]
    assert rows[1]["locator"] == "huge.jsonl:2" and rows[1]["excerpt"].startswith('{"text": "xxx')
    assert kinds(read(path, tmp_path, max_doc_bytes=60 << 20)) == Counter({("document", None): 3})


def test_truncated_gzip_jsonl_keeps_lines_before_the_damage(shared_data: Path, tmp_path: Path):
    source = shared_data / "web/dolma_cc_samples/multiple_files/cc_en_head-0174.jsonl.gz"
    data = source.read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: int(len(data) * 0.6)])
    rows = read(path, tmp_path)
    assert rows[-1]["reason"] == "truncated_stream"
    docs = [r for r in rows if r["kind"] == "document"]
    full = read(source, source.parent)
    assert 0 < len(docs) < len(full)
    assert [d["text"] for d in docs] == [d["text"] for d in full[: len(docs)]]
    assert rows[-1]["locator"] == f"cut.jsonl.gz:{len(rows)}"


def test_json_lines_reads_plain_and_gzip_alike_and_skips_blank_lines(shared_data: Path, tmp_path: Path):
    source = shared_data / "web/dolma_cc_samples/multiple_files/cc_en_head-0174.jsonl.gz"
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        expected = [json.loads(line) for line in fh if line.strip()]
    assert [obj for _, obj in json_lines(source)] == expected
    spaced = "\n\n".join(json.dumps(obj) for obj in expected[:3]) + "\n   \n"
    (tmp_path / "spaced.jsonl").write_text(spaced)
    assert list(json_lines(tmp_path / "spaced.jsonl")) == [
        (1, expected[0]),
        (3, expected[1]),
        (5, expected[2]),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "cut', "bad.jsonl.gz:3: not valid JSON"),
        ('["a", "list"]', "bad.jsonl.gz:3: a JSON list"),
        ("[" * 100_000 + "]" * 100_000, "bad.jsonl.gz:3: not valid JSON .*recursion"),
    ],
)
def test_json_lines_names_the_file_and_line_of_a_bad_line(tmp_path: Path, line: str, message: str):
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(f'{{"text": "one"}}\n\n{line}\n{{"text": "four"}}\n')
    read_lines = json_lines(path)
    assert next(read_lines) == (1, {"text": "one"})  # lines before the bad one are read
    with pytest.raises(JsonLinesError, match=message):
        next(read_lines)


def test_json_lines_damaged_gzip_is_an_error_naming_the_file(shared_data: Path, tmp_path: Path):
    data = (shared_data / "web/dolma_cc_samples/multiple_files/cc_en_head-0174.jsonl.gz").read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JsonLinesError, match="cut.jsonl.gz: damaged compressed stream"):
        list(json_lines(path))


def test_zero_byte_file_and_unknown_format(tmp_path: Path):
    (tmp_path / "empty.warc.gz").write_bytes(b"")
    (tmp_path / "notes.xyz").write_bytes(b"hello")
    assert kinds(read(tmp_path / "empty.warc.gz", tmp_path)) == Counter({("quarantine", "empty_file"): 1})
    assert kinds(read(tmp_path / "notes.xyz", tmp_path)) == Counter({("quarantine", "unsupported_format"): 1})


def test_images_verified_with_captions(shared_data: Path, tmp_path: Path):
    coco = shared_data / "images/coco_mini"
    rows = read(coco / "val2017/000000000139.jpg", coco)
    assert rows[0]["kind"] == "image" and (rows[0]["width"], rows[0]["height"]) == (640, 426)
    assert len(rows[0]["caption"].splitlines()) == 5
    skimage = shared_data / "images/skimage_data"
    for name, fmt in (
        ("multipage.tif", "tiff"),
        ("no_time_for_that_tiny.gif", "gif"),
        ("coffee.png", "png"),
    ):
        (row,) = read(skimage / name, skimage)
        assert (row["kind"], row["format"], row["caption"]) == ("image", fmt, None)
    jpg = (shared_data / "images/datajuicer_test_images/cat.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(jpg[: len(jpg) // 2])
    (tmp_path / "cat.jpg").write_bytes(jpg)
    (tmp_path / "cat.txt").write_text("a cat\n")
    assert kinds(read(tmp_path / "half.jpg", tmp_path)) == Counter({("quarantine", "corrupt_image"): 1})
    (cat,) = read(tmp_path / "cat.jpg", tmp_path)
    assert cat["caption"] == "a cat" and len(cat["sha256"]) == 64


def test_image_parquet_and_corrupt_parquet(shared_data: Path, tmp_path: Path):
    folder = shared_data / "images/datajuicer_test_images"
    rows = read(folder / "demo-dataset-images-bytes.parquet", folder, "image_parquet")
    assert [r["kind"] for r in rows] == ["image"] * 3
    assert rows[1]["caption"] == "<__dj__image> A bus." and rows[1]["uri"].endswith("img2.jpg")
    data = (folder / "demo-dataset-images-bytes.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    assert kinds(read(tmp_path / "cut.parquet", tmp_path, "image_parquet")) == Counter(
        {("quarantine", "corrupt_parquet"): 1}
    )


def test_text_parquet_from_real_jsonl(shared_data: Path, tmp_path: Path):
    path = shared_data / "web/datajuicer_pretrain_source_samples/redpajama-cc-2023-06-refined.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "docs.parquet")
    rows = read(tmp_path / "docs.parquet", tmp_path)
    assert [r["text"] for r in rows] == [r["text"] for r in records]
    assert kinds(read(tmp_path / "docs.parquet", tmp_path, options={"text_field": "body"})) == Counter(
        {("quarantine", "missing_column"): 1}
    )


def test_html_and_text_files(shared_data: Path, tmp_path: Path):
    with tarfile.open(shared_data / "web/trafilatura_eval/trafilatura_tests.tar.xz") as tar:
        member = next(m for m in tar if m.name.endswith("die-partei.net.luebeck.html"))
        (tmp_path / "page.html").write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    (doc,) = read(tmp_path / "page.html", tmp_path)
    assert "Die GEMA dreht völlig am Zeiger!" in doc["text"] and "Impressum" not in doc["text"]
    german = doc["text"].encode("cp1252", errors="ignore")
    (tmp_path / "latin.txt").write_bytes(german)
    (text,) = read(tmp_path / "latin.txt", tmp_path)
    assert "völlig" in text["text"] and "\ufffd" not in text["text"]


def test_decode_trusts_declarations_only_when_bytes_agree():
    page = "<meta charset='iso-8859-1'><p>Grüße aus Köln</p>".encode()
    assert decode_bytes(page, "iso-8859-1", html=True).text.endswith("Grüße aus Köln</p>")
    legacy = "Grüße".encode("cp1252")
    decoded = decode_bytes(legacy, "windows-1252")
    assert (decoded.text, decoded.replaced) == ("Grüße", 0)
