"""`refinery pii` sub-commands through typer's CliRunner, and purge-raw on a real lake lineage."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from pii.cli import app
from pii.purge import lineage, purge_raw
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
    assert purge_raw(lake, "ds/documents", "ds/documents").needed_versions == [0]


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
