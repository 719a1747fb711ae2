"""Hostile text input to the readers (no Spark): binary files posing as text, UTF-16, floods of bad
lines, names that are not UTF-8, surrogates in JSON and huge image captions. Compressed, Parquet and
WARC input have files of their own (test_hostile_compressed/parquet/warc.py). Every file is built by
the test."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
from PIL import Image

from pipelines.ingest.readers import CAPPED, MAX_QUARANTINE_ROWS
from pipelines.ingest.readers.images import MAX_CAPTION_CHARS
from pipelines.ingest.readers.schema import RECORD_SCHEMA, to_batches
from tests.pipelines.hostile_files import MB, read, reasons


def test_binary_file_named_jsonl_is_one_row(tmp_path: Path):
    rng = random.Random(7)
    path = tmp_path / "photo.jsonl"
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(200_000)))
    rows = read(path, "jsonl")
    assert [(r["kind"], r["reason"]) for r in rows] == [("quarantine", "binary_file")]
    html = tmp_path / "page.html"
    html.write_bytes(path.read_bytes())
    assert reasons(read(html, "html")) == Counter({"binary_file": 1})


def test_utf16_text_with_bom_is_not_binary(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Grüße aus Köln, a plain text note.\n".encode("utf-16"))
    rows = read(path, "text")
    assert [r["kind"] for r in rows] == ["document"]
    assert "Köln" in rows[0]["text"]


def test_quarantine_is_capped_per_file_and_counts_reconcile(tmp_path: Path):
    """Text first, then 416 lines of garbage: 100 quarantine rows, one summary row, the rest
    counted per reason; documents + quarantine rows - summary + folded = the file's lines."""
    good = [json.dumps({"text": f"line {i}"}).encode() for i in range(300)]
    rng = random.Random(3)
    bad = [b"{not json " + bytes(rng.choice(b"abc:{}[]") for _ in range(40)) for _ in range(400)]
    bad += [b"[1, 2]"] * 16
    lines = good + bad
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = read(path, "jsonl")
    quarantine = [r for r in rows if r["kind"] == "quarantine"]
    assert len(quarantine) == MAX_QUARANTINE_ROWS + 1
    assert quarantine[-1]["reason"] == CAPPED
    assert "316 more not written" in quarantine[-1]["excerpt"]
    folded = {r["reason"]: json.loads(r["meta"])["count"] for r in rows if r["kind"] == "folded"}
    assert folded == {"malformed_json": 300, "not_an_object": 16}
    documents = sum(r["kind"] == "document" for r in rows)
    assert documents + len(quarantine) - 1 + sum(folded.values()) == len(lines)


def test_names_that_are_not_utf8_are_carried_and_shown_escaped(tmp_path: Path):
    name = os.fsdecode(b"caf\xe9\x1b[2J.jsonl")  # a Latin-1 name holding a screen-clearing escape
    path = tmp_path / name
    path.write_bytes(b'{"text": "bonjour"}\n{"text": 3}\n')
    rows = read(path, "jsonl")
    doc, bad = rows
    assert doc["locator"] == "caf\\xe9\\x1b[2J.jsonl:1"
    assert bad["locator"] == "caf\\xe9\\x1b[2J.jsonl:2" and bad["reason"] == "text_not_a_string"
    assert bytes.fromhex(json.loads(doc["meta"])["path_hex"]) == b"caf\xe9\x1b[2J.jsonl"
    table = pa.Table.from_batches(list(to_batches(rows)), schema=RECORD_SCHEMA)  # fits Arrow
    assert table.num_rows == 2


def test_names_differing_only_in_undecodable_bytes_get_different_ids(tmp_path: Path):
    ids = set()
    for raw in (b"caf\xe9.jsonl", b"caf\xe8.jsonl"):
        path = tmp_path / os.fsdecode(raw)
        path.write_bytes(b'{"text": "same"}\n')
        ids.add(read(path, "jsonl")[0]["id"])
    assert len(ids) == 2


def test_lone_surrogates_in_json_are_quarantined_not_a_crash(tmp_path: Path):
    path = tmp_path / "surrogates.jsonl"
    path.write_bytes(
        b'{"text": "half a pair \\ud800 here"}\n'
        b'{"text": "fine", "title": "\\udfff"}\n'
        b'{"text": "fine too", "id": "\\ud800"}\n'
    )
    rows = read(path, "jsonl", options={"id_field": "id"})
    assert [r.get("reason") for r in rows] == ["invalid_unicode", None, None]
    assert json.loads(rows[1]["meta"]) == {"title": "\udfff"}  # kept, as a JSON escape
    pa.Table.from_batches(list(to_batches(rows)), schema=RECORD_SCHEMA)


def test_huge_sidecar_caption_is_cut(tmp_path: Path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "cat.png")
    (tmp_path / "cat.txt").write_bytes(b"a cat " * (4 * MB))
    rows = read(tmp_path / "cat.png", "images")
    assert rows[0]["kind"] == "image"
    assert len(rows[0]["caption"]) <= MAX_CAPTION_CHARS
