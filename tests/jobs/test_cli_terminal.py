"""The CLI in an 80-column terminal and in a pipe: complete, escaped, with the funnel first.

The lake here is real (run records written by `RunRecord.save`, Delta tables committed by
`Lake.write_arrow`) but built without Spark, so every listing command runs in seconds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console

from jobs.funnel import funnel
from jobs.registry import resolve_run_id
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.lake import Lake
from pipelines.framework.runrecord import RunRecord, StageRecord
from pipelines.framework.terminal_table import print_table
from tests.cli_run import refinery as run_cli

REPO = Path(__file__).resolve().parents[2]
LONG_REASON = "gopher_below_alpha_threshold_with_a_long_name"
HOSTILE = "evil\x1b]0;pwned\x07[bold]markup[/bold]\u202etxt.exe"


def _record(lake: Path, run_id: str, created: str) -> RunRecord:
    """A finished run shaped like the demo: ingest, annotate, decide, dedup."""
    stages = [
        StageRecord(id="ingest", stage="ingest", status="succeeded", seconds=3.2, outputs={"documents": 0}),
        StageRecord(
            id="annotate",
            stage="annotate",
            status="succeeded",
            seconds=9.0,
            inputs={"documents": 0},
            outputs={"annotated": 0},
            rows_in=100,
            kept=100,
            dropped={},
        ),
        StageRecord(
            id="decide",
            stage="decide",
            status="succeeded",
            seconds=2.5,
            inputs={"annotated": 0},
            outputs={"decided": 0},
            rows_in=100,
            kept=60,
            dropped={"language": 30, LONG_REASON: 10},
        ),
        StageRecord(
            id="minhash",
            stage="minhash_dedup",
            status="succeeded",
            seconds=4.0,
            inputs={"decided": 0},
            outputs={"deduped": 0},
            rows_in=100,
            kept=55,
            dropped={"language": 30, LONG_REASON: 10, "minhash_duplicate": 5},
        ),
    ]
    record = RunRecord(
        run_id=run_id,
        job="demo",
        dataset="demo",
        lake=str(lake),
        status="succeeded",
        created_at=created,
        stages=stages,
    )
    record.save()
    return record


@pytest.fixture()
def small_lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    _record(root, "demo-20261203-080000-aaaaaa", "2026-12-03T08:00:00.000+00:00")
    _record(root, "demo-20261203-090000-bbbbbb", "2026-12-03T09:00:00.000+00:00")
    _record(root, "other-20261203-070000-cccccc", "2026-12-03T07:00:00.000+00:00")
    lake = Lake(root)
    lake.write_arrow(
        pa.table(
            {
                "doc_id": ["d1", "d2", "d3"],
                "source": ["web", HOSTILE, "web"],
                "text": ["kept text", "dropped " + HOSTILE, "another dropped one"],
                DROP_REASON: [None, LONG_REASON, "language"],
            }
        ),
        "demo/decided",
    )
    lake.write_arrow(
        pa.table(
            {
                "source": [HOSTILE],
                "locator": ["bad.jsonl:3"],
                "reason": ["json_not_object"],
                "excerpt": [HOSTILE * 20],
            }
        ),
        "demo/quarantine",
    )
    return root


def refinery(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The CLI as a user's shell runs it, piped (stdout is not a terminal)."""
    return run_cli(*args, env={"COLUMNS": str(columns)}, unset=["REFINERY_LAKE"], timeout=300)


def _assert_readable(output: str) -> None:
    """Lines fit 80 columns and nothing is cut (excerpts say how much they leave out)."""
    assert "…" not in output
    assert "\x1b" not in output and "\u202e" not in output and "\x07" not in output
    assert all(len(line) <= 80 for line in output.splitlines()), output


def test_print_table_stacks_rows_that_do_not_fit():
    row = ("demo-20261203-080000-aaaaaa", "interrupted by the user")
    narrow = Console(width=40, record=True, force_terminal=False)
    print_table(narrow, ("run", "status"), [row])
    text = narrow.export_text()
    assert "run: demo-20261203-080000-aaaaaa\n  status: interrupted by the user" in text
    assert "…" not in text

    wide = Console(width=120, record=True, force_terminal=False)
    print_table(wide, ("run", "status"), [row])
    assert "┃ run" in wide.export_text()


def test_print_table_shows_markup_and_controls_as_text():
    console = Console(width=200, record=True, force_terminal=True)
    print_table(console, ("source",), [(HOSTILE,)])
    text = console.export_text()
    assert "[bold]markup[/bold]" in text and "\\x1b]0;pwned\\x07" in text and "\\u202e" in text


def test_funnel_counts_only_what_each_stage_dropped(small_lake):
    record = RunRecord.load(small_lake, "demo-20261203-090000-bbbbbb")
    steps = {step.id: step for step in funnel(record)}
    assert steps["ingest"].dropped is None
    assert steps["annotate"].dropped == {}
    assert steps["decide"].dropped == {"language": 30, LONG_REASON: 10}
    assert steps["minhash"].dropped == {"minhash_duplicate": 5}
    assert all(step.upstream_known for step in steps.values())


def test_funnel_flags_counts_it_cannot_split(small_lake):
    record = RunRecord.load(small_lake, "demo-20261203-090000-bbbbbb")
    record.stages = record.stages[3:]  # the dedup stage alone: its input was written by no stage here
    (step,) = funnel(record)
    assert step.upstream_known is False and step.dropped["minhash_duplicate"] == 5


def test_run_ids_resolve_from_latest_and_unique_prefixes(small_lake):
    assert resolve_run_id(small_lake, "latest") == "demo-20261203-090000-bbbbbb"
    assert resolve_run_id(small_lake, "other") == "other-20261203-070000-cccccc"
    assert resolve_run_id(small_lake, "demo-20261203-08") == "demo-20261203-080000-aaaaaa"
    with pytest.raises(
        ValueError, match="ambiguous.*demo-20261203-080000-aaaaaa, demo-20261203-090000-bbbbbb"
    ):
        resolve_run_id(small_lake, "demo-")
    with pytest.raises(FileNotFoundError, match="no run 'nope'"):
        resolve_run_id(small_lake, "nope")
    with pytest.raises(ValueError, match="invalid run id"):
        resolve_run_id(small_lake, "../x")


def test_show_leads_with_the_funnel_at_80_columns(small_lake):
    shown = refinery("show", "demo-20261203-09", "--lake", str(small_lake))
    assert shown.returncode == 0, shown.stderr
    _assert_readable(shown.stdout)
    out = shown.stdout
    assert "demo-20261203-090000-bbbbbb" in out
    assert out.index("minhash_duplicate") < out.index("details")
    funnel_part = out[: out.index("details")]
    assert funnel_part.count(LONG_REASON) == 1  # dropped by decide only, not repeated by dedup
    assert funnel_part.count("language") == 1


def test_ambiguous_prefix_is_an_error_listing_candidates(small_lake):
    shown = refinery("show", "demo-", "--lake", str(small_lake))
    assert shown.returncode == 2
    assert "ambiguous" in shown.stderr and "demo-20261203-080000-aaaaaa" in shown.stderr


@pytest.mark.parametrize("command", [["runs"], ["tables"], ["tables", "demo/decided"], ["quarantine"]])
def test_listings_are_complete_at_80_columns_and_have_json(small_lake, command):
    listed = refinery(*command, "--lake", str(small_lake))
    assert listed.returncode == 0, listed.stderr
    _assert_readable(listed.stdout)
    as_json = refinery(*command, "--lake", str(small_lake), "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload
    if command == ["runs"]:
        assert "demo-20261203-090000-bbbbbb" in listed.stdout
        assert {r["run_id"] for r in payload} >= {"demo-20261203-090000-bbbbbb"}
    if command == ["quarantine"]:
        assert payload[0]["first"][0]["source"] == HOSTILE  # JSON is lossless
        assert "\\x1b]0;pwned" in listed.stdout and "[bold]markup[/bold]" in listed.stdout
        assert "json_not_object" in listed.stdout and "bad.jsonl:3" in listed.stdout
        assert f"[+{len(HOSTILE) * 20 - 120} chars]" in listed.stdout.replace("\n", "")


def test_dropped_browses_dropped_documents(small_lake):
    listed = refinery("dropped", "demo/decided", "--lake", str(small_lake))
    assert listed.returncode == 0, listed.stderr
    _assert_readable(listed.stdout)
    assert LONG_REASON in listed.stdout
    assert "d2" in listed.stdout and "d3" in listed.stdout and "d1" not in listed.stdout
    only = json.loads(
        refinery(
            "dropped", "demo/decided", "--reason", "language", "--json", "--lake", str(small_lake)
        ).stdout
    )
    assert [row["doc_id"] for row in only] == ["d3"]


def test_empty_answers_say_why_and_what_exists(small_lake, tmp_path):
    """A mistyped reason or table, an empty lake or quarantine: each answer names what is there."""
    typo = refinery("dropped", "demo/decided", "--reason", "languag", "--lake", str(small_lake))
    text = " ".join(typo.stdout.split())
    assert typo.returncode == 0 and "dropped for 'languag'; did you mean 'language'?" in text
    assert f"its reasons: {LONG_REASON} 1, language 1" in text
    table = refinery("dropped", "demo/decidd", "--lake", str(small_lake))
    assert table.returncode == 2 and "did you mean 'demo/decided'?" in " ".join(table.stderr.split())
    for lake, why in (
        (tmp_path / "absent", "no lake there"),
        (small_lake / "demo", "no run recorded there yet"),
    ):
        runs = refinery("runs", "--lake", str(lake))
        assert runs.returncode == 0 and f"({why})" in " ".join(runs.stdout.split()), runs.stdout
    Lake(small_lake).write_arrow(
        pa.table({c: pa.array([], pa.string()) for c in ("source", "locator", "reason", "excerpt")}),
        "clean/quarantine",
    )
    empty = refinery("quarantine", "clean/quarantine", "--lake", str(small_lake))
    assert empty.returncode == 0 and empty.stdout.strip() == "clean/quarantine: nothing quarantined"
