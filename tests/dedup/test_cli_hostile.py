"""Hostile input to dedup: devices, FIFOs, huge and malformed files for `refinery dedup files`, and
spec values that name no column or are no expression for the stages.

Bad input gets a line saying where and why, counted, never a crash, a hang, or a wrong document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pydantic import ValidationError
from typer.testing import CliRunner

from dedup.cli import app
from dedup.config import ExactDedupConfig, LineDedupConfig, MinHashDedupConfig
from dedup.stages import ExactDedup, LineDedup, MinHashDedup

REPO = Path(__file__).resolve().parents[2]
TEXT = "the same long sentence about the river and the old mill stands here again " * 3
# The child's address space: reading /dev/zero whole used to end in MemoryError here, not in swap.
CHILD = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
    "from dedup.cli import app; app(sys.argv[1:], prog_name='refinery dedup')"
)


def _report(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_devices_and_fifos_are_skipped_unopened(tmp_path: Path) -> None:
    """/dev/zero never ends and a FIFO without a writer blocks the open for ever: neither is read."""
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "folder" / "pipe.jsonl")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "files", "/dev/zero", str(fifo), str(tmp_path / "folder"), "--json"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,  # a guard against the old hang, not a measurement
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["documents"] == 0 and report["skipped"] == {"not_a_regular_file": 3}
    assert sorted(report["problems"]) == sorted(
        f"{p}: not a regular file" for p in ("/dev/zero", fifo, tmp_path / "folder" / "pipe.jsonl")
    )


def test_files_and_lines_over_the_limits_are_skipped_naming_the_option(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("word " * 60)
    (tmp_path / "lines.jsonl").write_text(json.dumps({"text": "word " * 60}) + "\n")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG" + bytes(300))
    args = ["files", str(tmp_path), "--max-doc-bytes", "100", "--max-image-bytes", "100", "--json"]
    report = _report(CliRunner().invoke(app, args))
    assert report["documents"] == 0 and report["images"] == 0
    assert report["skipped"] == {"oversize": 2, "oversize_image": 1}
    problems = sorted(report["problems"])
    assert (
        problems[0]
        == f"{tmp_path / 'big.txt'}: file larger than --max-doc-bytes (100 bytes); raise it to read it"
    )
    assert problems[1].startswith(
        f"{tmp_path / 'lines.jsonl'}:1: line larger than --max-doc-bytes (100 bytes)"
    )
    assert problems[2].startswith(
        f"{tmp_path / 'photo.png'}: image larger than --max-image-bytes (100 bytes)"
    )


def test_lines_without_a_string_text_are_counted_and_the_rest_of_the_file_is_read(
    spark, tmp_path: Path
) -> None:
    """`{"text": 123}` used to become the document "123", a JSON array line or a bad line ended the file,
    and a binary file was read with replacement characters."""
    lines = [
        {"text": TEXT},
        {"text": None},
        {"text": 123},
        {"text": {"a": 1}},
        [1, 2],
        {"no": "text"},
    ]
    body = (
        "\n".join(json.dumps(line) for line in lines) + "\n{bad json\n\n" + json.dumps({"text": TEXT}) + "\n"
    )
    (tmp_path / "mixed.jsonl").write_text(body)
    (tmp_path / "page.txt").write_text(TEXT)
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 8)
    report = _report(CliRunner().invoke(app, ["files", str(tmp_path), "--json"]))
    assert report["skipped"] == {
        "binary_file": 1,
        "malformed_json": 1,
        "missing_text_field": 2,
        "not_an_object": 1,
        "text_not_a_string": 2,
    }
    records = 8 + 2  # the non-blank lines of mixed.jsonl, then the two whole files
    assert report["documents"] == 3 and report["documents"] + sum(report["skipped"].values()) == records
    members = [f"{tmp_path / 'mixed.jsonl'}:1", f"{tmp_path / 'mixed.jsonl'}:9", str(tmp_path / "page.txt")]
    assert [c["members"] for c in report["text_clusters"]] == [sorted(members)]
    problems = report["problems"]
    assert f"{tmp_path / 'mixed.jsonl'}:3: the text field is not a string" in problems
    assert f"{tmp_path / 'mixed.jsonl'}:5: a JSON value that is not an object" in problems
    assert any(p.startswith(f"{tmp_path / 'mixed.jsonl'}:7: not valid JSON (") for p in problems)
    assert f"{tmp_path / 'blob.txt'}: a binary file, not text" in problems


@pytest.mark.parametrize(
    ("args", "options"),
    [(["--num-perm", "0"], ["--num-perm"]), (["--bands", "0", "--rows", "0"], ["--bands", "--rows"])],
)
def test_option_errors_name_each_option_once(tmp_path: Path, args: list[str], options: list[str]) -> None:
    result = CliRunner().invoke(app, ["files", str(tmp_path), *args])
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())
    for option in options:
        assert message.count(f"{option}: Input should be greater than or equal to") == 1, message


@pytest.mark.parametrize("field", ["key", "priority"])
@pytest.mark.parametrize("value", ["1/0 ; DROP", "DROP TABLE documents", "SELECT 1", "uri)"])
def test_exact_dedup_refuses_what_is_not_one_expression_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ExactDedupConfig(**{field: value})
    (error,) = caught.value.errors()
    assert error["loc"] == (field,) and "Spark SQL expression" in error["msg"]


def test_exact_dedup_takes_documented_expressions() -> None:
    config = ExactDedupConfig(key="replace(uri, '2', '')", priority="length(text) + quality_score")
    assert sorted(config.columns()) == [("key", "uri"), ("priority", "quality_score"), ("priority", "text")]


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (
            ExactDedup(ExactDedupConfig(input="docs", priority="nosuchcol")),
            "priority: table 'docs' has no 'nosuchcol'",
        ),
        (ExactDedup(ExactDedupConfig(input="docs", key="lower(url)")), "key: table 'docs' has no 'url'"),
        (
            MinHashDedup(MinHashDedupConfig(input="docs", text_column="nonexistent")),
            "text_column: table 'docs' has no 'nonexistent'",
        ),
        (
            MinHashDedup(MinHashDedupConfig(input="docs", against="docs")),
            "against: table 'docs' has no 'minhash'",
        ),
        (
            LineDedup(LineDedupConfig(input="docs", text_column="body")),
            "text_column: table 'docs' has no 'body'",
        ),
    ],
)
def test_a_column_the_table_lacks_is_named_with_its_field_before_spark_plans(
    stage_ctx, lake, stage, message
) -> None:
    """Used to end in Spark's UNRESOLVED_COLUMN with a plan dump."""
    write_deltalake(lake.path("test/docs").url, pa.table({"doc_id": ["a", "b"], "text": [TEXT, TEXT]}))
    with pytest.raises(ValueError, match=f"^{message} column"):
        stage.run(stage_ctx)
