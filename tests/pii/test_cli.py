"""`refinery pii` sub-commands through typer's CliRunner, and purge-raw on a real lake lineage."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from pii.cli import app
from pii.purge import PurgeError, lineage, purge_raw
from pipelines.framework.lake import Lake

runner = CliRunner()


def _json_out(text: str) -> dict:
    """The first JSON object in the output (stderr notes may follow it)."""
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


def test_scan_counts_without_values(shared_data: Path):
    docs = shared_data / "peer-tests/dolma/tests/data/provided/documents/000.json.gz"
    result = runner.invoke(app, ["scan", str(docs), "--no-ner", "--show", "50"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    assert report["documents"] == 10 and report["counts"]["EMAIL_ADDRESS"] == 3
    assert report["ner_decoder"] == "no NER"
    for email in ("ask@bufvc.ac.uk", "info@claihr.ca", "info@eun.org"):
        assert email not in result.output
    assert all("<" in f["context"] for f in report["findings"])


def test_scan_reads_json_lines_and_stops_at_a_bad_line_naming_it(tmp_path: Path):
    """JSON Lines go through the one project reader: a broken line is an error with file and line,
    not a skipped document that would make the counts lie."""
    good = tmp_path / "good.jsonl.gz"
    with gzip.open(good, "wt", encoding="utf-8") as handle:
        handle.write('{"text": "write to ask@bufvc.ac.uk"}\n\n{"id": 2}\n{"text": "nothing here"}\n')
    result = runner.invoke(app, ["scan", str(good), "--no-ner"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    assert report["documents"] == 2 and report["counts"] == {"EMAIL_ADDRESS": 1}
    assert [f["doc"] for f in report["findings"]] == [f"{good}:1"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "cut\n', encoding="utf-8")
    result = runner.invoke(app, ["scan", str(bad), "--no-ner"])
    assert result.exit_code == 2
    assert f"{bad}:2: not valid JSON" in result.output


def test_scan_skips_and_names_text_no_utf8_can_hold(tmp_path: Path):
    """JSON's "\\ud800" is valid JSON but a lone surrogate: the scan names the line and goes on (ingest
    quarantines such a record as invalid_unicode), where it used to end in a pyarrow traceback."""
    path = tmp_path / "surrogate.jsonl"
    path.write_text(
        '{"text": "mail ask@bufvc.ac.uk \\ud800 now"}\n{"text": "write to info@eun.org"}\n', encoding="utf-8"
    )
    result = runner.invoke(app, ["scan", str(path), "--no-ner"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    assert report["documents"] == 1 and report["counts"] == {"EMAIL_ADDRESS": 1}
    assert report["skipped_invalid_unicode"] == {"count": 1, "first": [f"{path}:1"]}
    assert "invalid_unicode" in result.output and "ask@bufvc.ac.uk" not in result.output


def test_scan_counts_and_names_records_without_text(tmp_path: Path):
    """Records whose `text` is no string, or absent, used to vanish from the counts: now each is named
    with its line and reason, as a text holding lone surrogates is (and its value is not printed)."""
    path = tmp_path / "records.jsonl"
    path.write_text(
        '{"text": ["x@y.com"]}\n{"text": {"n": "bob@ex.com"}}\n{"text": 123}\n{"notext": "carol@example.com"}\n'
        '{"text": null}\n{"text": "  "}\n{"text": "write to dave@example.com"}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["scan", str(path), "--no-ner"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    assert report["documents"] == 1 and report["counts"] == {"EMAIL_ADDRESS": 1}
    assert report["skipped_no_text"] == {
        "count": 6,
        "first": [
            f"{path}:1: `text` is an array, not a string",
            f"{path}:2: `text` is an object, not a string",
            f"{path}:3: `text` is a number, not a string",
            f"{path}:4: no `text` field",
            f"{path}:5: `text` is null",
        ],
    }
    assert "6 record(s) skipped" in result.output
    assert not any(v in result.output for v in ("x@y.com", "bob@ex.com", "carol@example.com"))


def test_scan_of_a_folder_skips_an_unreadable_file_whole_and_goes_on(tmp_path: Path):
    """A binary or non-JSON file in a folder used to end the scan half-way with an error; now it is
    skipped whole (none of its records scanned, even the lines before the bad one), counted and
    named, and the other files are scanned. Named on its own, such a file is an error (exit 2)."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "mail ask@bufvc.ac.uk"}\n', encoding="utf-8")
    (folder / "c.bin").write_bytes(b"\x00\x01binary\xff" * 50)
    (folder / "d.jsonl").write_text('{"text": "info@eun.org"}\nnot json\n', encoding="utf-8")
    (folder / "e.txt").write_text("", encoding="utf-8")
    (folder / "z.jsonl").write_text('{"text": "write to info@claihr.ca"}\n', encoding="utf-8")
    result = runner.invoke(app, ["scan", str(folder), "--no-ner"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    assert report["documents"] == 2 and report["counts"] == {"EMAIL_ADDRESS": 2}
    assert report["unreadable_files"]["count"] == 2
    bad_bin, bad_line = report["unreadable_files"]["first"]
    assert bad_bin == f"{folder / 'c.bin'}: a binary file, not JSON Lines or a JSON array"
    assert bad_line.startswith(f"{folder / 'd.jsonl'}:2: not valid JSON")
    assert report["skipped_no_text"] == {"count": 1, "first": [f"{folder / 'e.txt'}: empty text"]}
    assert "2 file(s) of the folder skipped whole" in result.output

    alone = runner.invoke(app, ["scan", str(folder / "c.bin"), "--no-ner"])
    assert alone.exit_code == 2 and alone.output.startswith(f"error: {folder / 'c.bin'}: a binary file")
    assert "documents" not in alone.output  # refused before anything was scanned


@pytest.mark.parametrize("name", ["empty.txt", "empty.jsonl", "empty.json"])
def test_scan_of_an_empty_file_counts_no_document(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["scan", str(path), "--no-ner"])
    assert result.exit_code == 0, result.output
    assert _json_out(result.output)["documents"] == 0


def test_eval_reports_per_type_scores(shared_data: Path, tmp_path: Path):
    data = shared_data / "pii/presidio-research/generated_small.json"
    config = tmp_path / "pii.yaml"
    config.write_text("entities: [EMAIL_ADDRESS, CREDIT_CARD, IBAN_CODE]\nner: false\n")
    result = runner.invoke(app, ["eval", "--data", str(data), "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    ours = report["scores"]["ours"]["exact"]
    assert set(ours["per_type"]) == {"EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE"}
    assert ours["per_type"]["CREDIT_CARD"]["f1"] > 0.9 and ours["documents"] == 100
    assert report["scores"]["ours"]["overlap"]["overall"]["f1"] >= ours["overall"]["f1"]


def test_eval_tables_side_by_side_with_escaped_misses(tmp_path: Path):
    """Both match modes, ours beside Presidio's default, and a miss whose text holds an escape sequence
    printed escaped (corpus text never drives the terminal)."""
    text = "Call Dana at 212-555-0187.\x1b[31m Wirt Q. Xylo\x1b[0m owns it."
    start = text.index("owns")  # labelled PERSON: certainly missed, with escapes just before it
    records = [
        {
            "full_text": text,
            "spans": [
                {"entity_type": "PHONE_NUMBER", "start_position": 13, "end_position": 25},
                {"entity_type": "PERSON", "start_position": start, "end_position": start + 4},
            ],
        }
    ]
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(records))
    config = tmp_path / "pii.yaml"
    config.write_text("entities: [PHONE_NUMBER, PERSON]\n")
    result = runner.invoke(app, ["eval", "--data", str(data), "--config", str(config), "--anchor"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "exact spans" in out and "overlap spans" in out and "presidio_default" in out
    assert "\x1b" not in out and "[[owns]]" in out and "\\x1b[0m" in out


def test_eval_halves_are_disjoint_and_cover_the_file(shared_data: Path):
    from pii.evaluate import load_samples, split

    records = load_samples(shared_data / "pii/presidio-research/generated_large.json")
    tune, report = split(records, "tune"), split(records, "report")
    assert len(tune) + len(report) == len(records) and min(len(tune), len(report)) > 900
    tune_templates = {r["template_id"] for r in tune}
    assert not tune_templates & {r["template_id"] for r in report}
    assert split(records, "tune") == tune  # deterministic


def test_eval_rejects_bad_config(shared_data: Path, tmp_path: Path):
    config = tmp_path / "pii.yaml"
    config.write_text("entitys: [EMAIL_ADDRESS]\n")
    data = shared_data / "pii/presidio-research/generated_small.json"
    result = runner.invoke(app, ["eval", "--data", str(data), "--config", str(config)])
    assert result.exit_code != 0 and "entitys" in result.output


def _commit(lake: Lake, table: str, texts: list[str], inputs: dict[str, int] | None = None) -> int:
    meta = {"inputs": json.dumps(inputs or {})}
    return lake.write_arrow(pa.table({"text": texts}), table, meta).version


def test_purge_raw_keeps_curated_lineage(tmp_path: Path, generated_small):
    lake = Lake(tmp_path / "lake")
    texts = [r["full_text"] for r in generated_small]
    _commit(lake, "ds/documents", texts[:10])  # an old ingest nobody curated
    v1 = _commit(lake, "ds/documents", texts[10:20])
    d0 = _commit(lake, "ds/decided", ["x"], {"ds/documents": v1})
    _commit(lake, "ds/curated", ["y"], {"ds/decided": d0})
    _commit(lake, "ds/documents", texts[20:30])  # a newer ingest, not curated yet
    assert lineage(lake, "ds/curated", 0, "ds/documents") == {v1}

    dry = runner.invoke(app, ["purge-raw", "--lake", str(lake.root), "--dataset", "ds"])
    assert dry.exit_code == 0 and _json_out(dry.output)["files"] == 1 and not _json_out(dry.output)["deleted"]
    assert lake.dataset("ds/documents", 0).to_table().num_rows == 10  # nothing deleted without --yes

    done = runner.invoke(app, ["purge-raw", "--lake", str(lake.root), "--dataset", "ds", "--yes"])
    assert done.exit_code == 0 and _json_out(done.output)["deleted"]
    assert lake.dataset("ds/documents", v1).to_table().num_rows == 10  # the curated lineage stays readable
    assert lake.dataset("ds/documents").to_table().num_rows == 10
    with pytest.raises(Exception, match="(?i)not found|no such file|not exist"):  # purged: files are gone
        lake.dataset("ds/documents", 0).to_table()


def test_purge_refuses_without_lineage(tmp_path: Path, generated_small):
    lake = Lake(tmp_path / "lake")
    _commit(lake, "ds/documents", [r["full_text"] for r in generated_small[:5]])
    _commit(lake, "ds/curated", ["y"])
    result = runner.invoke(app, ["purge-raw", "--lake", str(lake.root), "--dataset", "ds", "--yes"])
    assert result.exit_code == 1 and "no recorded lineage" in result.output
    with pytest.raises(PurgeError, match="not its own redacted successor"):
        purge_raw(lake, "ds/documents", "ds/documents")


def _stage_commit(lake: Lake, table: str, stage: str, inputs: dict[str, int]) -> int:
    meta = {"stage": stage, "inputs": json.dumps(inputs)}
    return lake.write_arrow(pa.table({"text": [f"{stage} row"]}), table, meta).version


def _demo_lake(root: Path) -> Lake:
    """The demo's lineage: ingest, decide, two dedup stages into one table (its version 1 read its
    version 0), pii; then a newer ingest nobody curated yet."""
    lake = Lake(root)
    _stage_commit(lake, "ds/documents", "ingest", {})  # an old ingest nobody curated
    documents = _stage_commit(lake, "ds/documents", "ingest", {})
    decided = _stage_commit(lake, "ds/decided", "decide", {"ds/documents": documents})
    exact = _stage_commit(lake, "ds/deduped", "exact_dedup", {"ds/decided": decided})
    minhash = _stage_commit(lake, "ds/deduped", "minhash_dedup", {"ds/deduped": exact})
    _stage_commit(lake, "ds/curated", "pii", {"ds/deduped": minhash})
    _stage_commit(lake, "ds/documents", "ingest", {})
    return lake


def test_purge_refuses_a_table_that_is_not_raw_or_a_successor_that_is_not_redacted(tmp_path: Path):
    """`--raw deduped` used to delete deduped@0 (exact_dedup's output, no raw data); a curated table
    written by another stage than pii is no redacted successor. Both are refused, naming the problem."""
    lake = _demo_lake(tmp_path / "lake")
    base = ["purge-raw", "--lake", str(lake.root), "--dataset", "ds", "--yes"]
    derived = runner.invoke(app, [*base, "--raw", "deduped"])
    assert derived.exit_code == 1 and "'ds/deduped' is not a raw table" in derived.output
    assert "derived from ds/decided@0" in derived.output
    assert lake.dataset("ds/deduped", 0).to_table().num_rows == 1  # nothing deleted

    unredacted = runner.invoke(app, [*base, "--curated", "deduped"])
    assert unredacted.exit_code == 1 and "written by stage 'minhash_dedup', not 'pii'" in unredacted.output
    same = runner.invoke(app, [*base, "--raw", "curated"])
    assert same.exit_code == 1 and "not its own redacted successor" in same.output
    assert lake.dataset("ds/documents", 0).to_table().num_rows == 1


def test_purge_reports_what_it_deleted_and_nothing_on_a_repeat(tmp_path: Path):
    lake = _demo_lake(tmp_path / "lake")
    args = ["purge-raw", "--lake", str(lake.root), "--dataset", "ds", "--yes"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert _json_out(first.output) == {
        "raw": "ds/documents",
        "curated": "ds/curated",
        "needed_versions": [1],
        "latest_version": 2,
        "files": 1,
        "already_gone": 0,
        "deleted": True,
        "deleted_files": 1,
    }
    again = _json_out(runner.invoke(app, args).output)
    assert (again["files"], again["already_gone"], again["deleted"], again["deleted_files"]) == (
        0,
        1,
        False,
        0,
    )
    assert lake.dataset("ds/documents", 1).to_table().num_rows == 1  # the curated lineage stays


@pytest.mark.parametrize(
    "names, said",
    [
        (["--dataset", "", "--raw", ""], "--dataset is empty"),
        (["--dataset", "ds", "--raw", "/"], "--raw is empty"),
        (["--dataset", "../outside/demo"], "escapes the lake"),
    ],
)
def test_purge_names_that_leave_the_lake_are_one_line_errors(tmp_path: Path, names, said):
    result = runner.invoke(app, ["purge-raw", "--lake", str(tmp_path / "lake"), *names])
    assert result.exit_code == 2 and result.output.startswith("error: ") and said in result.output
    assert "Traceback" not in result.output and not (tmp_path / "outside").exists()


def test_scan_names_what_it_cannot_read_or_analyse(tmp_path: Path):
    """A text longer than the analyzer takes is counted as not analysed (the stage withholds such a
    text), a .gz that is not gzip and a config that is not a mapping are one-line errors."""
    long = tmp_path / "long.txt"
    long.write_text(
        "write to ask@bufvc.ac.uk " + "word " * 2_100_000, encoding="utf-8"
    )  # past MAX_CHARS (10M)
    result = runner.invoke(app, ["scan", str(long), "--no-ner"])
    assert result.exit_code == 0, result.output
    report = _json_out(result.output)
    assert report["not_analysed"] == {"count": 1, "first": [str(long)]} and report["documents_with_pii"] == 0
    assert "could not be analysed" in result.output and "ask@bufvc.ac.uk" not in result.output

    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(b'{"text": "not gzip"}\n')
    result = runner.invoke(app, ["scan", str(fake), "--no-ner"])
    assert result.exit_code == 2 and f"{fake}: cannot be read" in result.output

    listed = tmp_path / "pii.yaml"
    listed.write_text("- ner\n- entities\n")
    result = runner.invoke(app, ["scan", str(long), "--config", str(listed)])
    assert result.exit_code == 2 and "not a list" in result.output
