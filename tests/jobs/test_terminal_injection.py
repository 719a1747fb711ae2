"""Every CLI command that prints corpus text, fed text that attacks the terminal.

The hostile text holds an OSC title change (`ESC ] 0 ; pwned BEL`), a clear-screen CSI
(`ESC [ 2 J`), an 8-bit C1 CSI (U+009B, which some terminals honour as `ESC [`) and two
bidirectional controls (RIGHT-TO-LEFT OVERRIDE U+202E, LEFT-TO-RIGHT ISOLATE U+2066). It
reaches each command the way real data does: in a quarantine excerpt, a document's text,
a table name, commit metadata, a run record's error, a shard set's documents and sources, and
file names. The commands run through the real `refinery` app (typer's CliRunner, in process)
over a real lake (Delta tables committed by `Lake.write_arrow`, shards written by the shards
stage on Spark). No raw control or bidi character may reach the output, and the escaped form
must be visible, so that the user sees what the data holds. `--json` output must stay lossless.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from jobs.cli import app
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.lake import Lake
from pipelines.framework.runrecord import RunRecord, StageRecord

REPO = Path(__file__).resolve().parents[2]
# (raw, as for_terminal shows it)
PIECES = [
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    ("\x1b[2J", "\\x1b[2J"),
    ("\x9b31m", "\\x9b31m"),
    ("\u202e", "\\u202e"),
    ("\u2066", "\\u2066"),
]
HOSTILE = "hostile " + "".join(raw for raw, _ in PIECES) + " end"
ESCAPED = "hostile " + "".join(shown for _, shown in PIECES) + " end"
# delta-rs refuses C0 controls in a table's path, so a table name can only hold the C1 and bidi pieces.
TABLE_PIECES = PIECES[2:]
TABLE_NAME = "hostile " + "".join(raw for raw, _ in TABLE_PIECES) + " end"
TABLE_ESCAPED = "hostile " + "".join(shown for _, shown in TABLE_PIECES) + " end"
# What must never reach a terminal: C0 controls but newline and tab, DEL, C1, bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
PROSE = (
    "The committee met on Tuesday to discuss the budget for the coming year and agreed that the "
    "library would stay open on Sundays while the reading room is repainted by volunteers. "
)
runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def assert_safe(output: str, escaped: str = ESCAPED) -> None:
    leaked = sorted({f"U+{ord(c):04X}" for c in RAW.findall(output)})
    assert not leaked, f"raw control characters reached the terminal: {leaked}\n{output!r}"
    assert escaped in output, f"the escaped form is not visible:\n{output}"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """Quarantine, a decided table, a table with a hostile name, commit metadata and a run record."""
    root = tmp_path_factory.mktemp("injection") / "lake"
    lake = Lake(root)
    lake.write_arrow(
        pa.table(
            {
                "source": ["web"],
                "locator": [f"input.jsonl:{HOSTILE}"],
                "reason": ["bad_json"],
                "excerpt": [HOSTILE],
                "stage": ["ingest"],
                "run_id": ["r1"],
            }
        ),
        "ds/quarantine",
    )
    lake.write_arrow(
        pa.table(
            {
                "doc_id": ["d1"],
                "source": ["web"],
                DROP_REASON: ["too_short"],
                "text": [HOSTILE + " " + PROSE],
            }
        ),
        "ds/decided",
        metadata={"stage": HOSTILE, "run_id": "r1"},
    )
    lake.write_arrow(pa.table({"text": ["x"]}), f"{TABLE_NAME}/documents")
    RunRecord(
        run_id="r1",
        job="demo",
        dataset="ds",
        lake=str(root),
        status="failed",
        error=HOSTILE,
        stages=[
            StageRecord(
                id="ingest", stage="ingest", status="failed", rows_out={"ds/documents": 1}, error=HOSTILE
            )
        ],
    ).save()
    return root


def test_quarantine(lake):
    assert_safe(invoke("quarantine", "--lake", str(lake)))


def test_quarantine_json_is_lossless(lake):
    output = invoke("quarantine", "--lake", str(lake), "--json")
    assert not RAW.search(output)
    assert json.loads(output)[0]["first"][0]["excerpt"] == HOSTILE


def test_tables(lake):
    assert_safe(invoke("tables", "--lake", str(lake)), TABLE_ESCAPED)


def test_tables_show(lake):
    assert_safe(invoke("tables", "show", "ds/decided", "--lake", str(lake)))


def test_show_run(lake):
    assert_safe(invoke("show", "r1", "--lake", str(lake)))


def test_dropped(lake):
    assert_safe(invoke("dropped", "ds/decided", "--lake", str(lake)))


def test_pii_scan(tmp_path):
    """Findings are shown in their (redacted) context, which here holds the hostile text."""
    source = tmp_path / "scan.jsonl"
    source.write_text(
        json.dumps({"text": f"{HOSTILE} jane.doe@example.com {PROSE}"}) + "\n", encoding="utf-8"
    )
    output = invoke("pii", "scan", str(source), "--no-ner")
    leaked = sorted({f"U+{ord(c):04X}" for c in RAW.findall(output)})
    assert not leaked, f"raw control characters reached the terminal: {leaked}\n{output!r}"
    finding = json.loads(output)["findings"][0]
    assert "pwned" in finding["context"] and "<EMAIL_ADDRESS>" in finding["context"]


@pytest.fixture(scope="module")
def shard_set(spark, tmp_path_factory) -> tuple[Path, str]:
    """A shard set written by the shards stage from documents whose text and source are hostile."""
    from pipelines.framework.stage import StageContext
    from training.shards.stage import Shards, ShardsConfig

    root = tmp_path_factory.mktemp("shards")
    lake = Lake(root / "lake")
    rows = [
        {
            "doc_id": f"doc{i}",
            "source": HOSTILE,
            "text": f"{HOSTILE} {i} {PROSE}",
            "lang": "en",
            "quality_score": 0.9,
            DROP_REASON: None,
        }
        for i in range(4)
    ]
    lake.write_arrow(pa.Table.from_pylist(rows), "sh/curated")
    ctx = StageContext(spark=spark, lake=lake, dataset="sh", run_id="r-shards", work_dir=root / "work")
    config = ShardsConfig(
        tokenizer=str(REPO / "samples" / "tokenizer.json"), validation_fraction=0.0, shard_tokens=100_000
    )
    Shards(config).run(ctx)
    return lake.root / "shards" / "default", "doc1"


def test_shards_show(shard_set):
    folder, doc = shard_set
    assert_safe(invoke("shards", "show", str(folder), "--doc", doc))


def test_shards_info(shard_set):
    folder, _ = shard_set
    assert_safe(invoke("shards", "info", str(folder)))


def test_dedup_files(spark, tmp_path):
    """Cluster members are `file:line` names and a bad line is reported with its file name: the file is
    named with the hostile text."""
    folder = tmp_path / "docs"
    folder.mkdir()
    hostile_name = "dup " + "".join(raw for raw, _ in PIECES) + " end"
    lines = [json.dumps({"text": PROSE * 3})] * 2 + [json.dumps({"no_text": 1})]
    (folder / f"{hostile_name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    escaped_name = "dup " + "".join(shown for _, shown in PIECES) + " end"
    output = invoke("dedup", "files", str(folder))
    assert_safe(output, escaped_name)
    assert "text cluster of 2" in output and "skipped:" in output
    as_json = invoke("dedup", "files", str(folder), "--json")
    assert not RAW.search(as_json)
    members = json.loads(as_json)["text_clusters"][0]["members"]
    assert all(hostile_name in m for m in members)


def test_langid_detect(tmp_path):
    """One text per line of a plain text file, printed after its label (cut to --excerpt characters)."""
    from curation.cli import langid_app

    if "detect" not in {c.name or c.callback.__name__ for c in langid_app.registered_commands}:
        pytest.skip("there is no `refinery langid detect` command")
    source = tmp_path / "docs.txt"
    source.write_text(f"{HOSTILE} {PROSE}\n", encoding="utf-8")
    assert_safe(invoke("langid", "detect", str(source), "--backend", "fasttext", "--excerpt", "200"))
