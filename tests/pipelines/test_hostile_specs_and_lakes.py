"""Job spec files and lake arguments a user can get wrong: each is one line naming what to fix, never a
traceback, and a damaged table is named rather than ending every listing. Every file is built here."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from jobs.cli import app
from pipelines.framework.lake import Lake, without_backtrace
from pipelines.framework.master_url import check_master_url
from pipelines.framework.spark import get_spark
from pipelines.framework.spec import SpecError, load_spec

runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})


def _fails_cleanly(*args: str, code: int = 2) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"name: caf\xe9\nstages: []\n", r"not UTF-8 text \(byte 9\)"),
        (
            b"name: x\nstages: []\nx: " + b"[" * 5000 + b"]" * 5000 + b"\n",
            "nested deeper than a job spec can be",
        ),
        (
            b"name: x\nstages: [{stage: ingest, params: {n: " + b"9" * 5000 + b"}}]\n",
            "not valid YAML: .*digits",
        ),
        (b"name: x\nlake: 's3://'\nstages: []\n", r"lake: .*s3://: name a bucket"),
        (b"name: x\nlake: 'file://'\nstages: []\n", r"lake: .*file://: name a path"),
        (b"name: x\nlake: 'ftp://host/lake'\nstages: []\n", r"lake: .*unsupported scheme 'ftp'"),
        (b"name: x\nspark: {master: 'bogus://'}\nstages: []\n", r"spark.master: .*not a Spark master URL"),
        (
            b"name: x\nstages: [{stage: annotate, params: {annotators: "
            b"[{decontam: {benchmarks: [{path: nope/gsm8k.jsonl}]}}]}}]\n",
            r"benchmarks\[0\].path: .*benchmark file 'nope/gsm8k.jsonl' does not exist",
        ),
        (
            b"name: x\nstages: [{stage: decide, params: {languages: [eng]}}]\n",
            r"languages: .*did you mean 'en'",
        ),
    ],
)
def test_a_bad_spec_file_is_a_spec_error_naming_it(tmp_path: Path, content: bytes, says: str):
    path = tmp_path / "job.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=f"{path}: .*{says}"):
        load_spec(path)
    assert "job.yaml" in _fails_cleanly("run", str(path))


@pytest.mark.parametrize(
    ("lake", "says"),
    [
        ("s3://", "s3://: name a bucket"),
        ("file://", "file://: name a path"),
        ("foo://x", "unsupported scheme"),
    ],
)
def test_a_lake_argument_that_names_no_lake_is_a_usage_error(lake: str, says: str):
    for command in (["runs"], ["tables"], ["quarantine"], ["dropped", "demo/decided"]):
        assert says in _fails_cleanly(*command, "--lake", lake)


def test_a_file_given_as_the_lake_is_named(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("not a lake")
    assert f"{path} is a file, not a lake folder" in _fails_cleanly("tables", "--lake", str(path))


@pytest.fixture()
def damaged_lake(tmp_path: Path) -> Path:
    """Two tables; the second's latest commit file replaced by a JSON array, as a bad copy might leave it."""
    lake = Lake(tmp_path / "lake")
    lake.write_arrow(pa.table({"x": [1, 2]}), "d/good", {"stage": "first"})
    lake.write_arrow(pa.table({"x": [3]}), "d/bad", {"stage": "first"})
    (tmp_path / "lake/d/bad/_delta_log/00000000000000000000.json").write_text("[1, 2, 3]\n")
    return tmp_path / "lake"


def test_one_damaged_table_is_a_row_of_the_listing_not_its_end(damaged_lake: Path):
    result = runner.invoke(app, ["tables", "--lake", str(damaged_lake), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["table"]: row for row in json.loads(result.output)}
    assert rows["d/good"]["rows"] == 2 and "error" not in rows["d/good"]
    assert "cannot be read" in rows["d/bad"]["error"] and "<unknown>" not in rows["d/bad"]["error"]
    shown = _fails_cleanly("tables", "show", "d/bad", "--lake", str(damaged_lake))
    assert "00000000000000000000.json: line 1 is not a Delta log action" in shown


def test_data_files_the_log_names_but_storage_lacks_are_named(damaged_lake: Path):
    lake = Lake(damaged_lake)
    lake.write_arrow(
        pa.table({"source": ["s"], "locator": ["f:1"], "reason": ["oversize"], "excerpt": ["x"]}),
        "d/quarantine",
        {"stage": "ingest"},
    )
    for data_file in (damaged_lake / "d/quarantine").glob("*.parquet"):
        data_file.unlink()
    said = _fails_cleanly("quarantine", "d/quarantine", "--lake", str(damaged_lake), code=1)
    assert "table d/quarantine: its data cannot be read" in said
    assert "is not a quarantine table (no excerpt, locator, reason, source)" in _fails_cleanly(
        "quarantine", "d/good", "--lake", str(damaged_lake)
    )


def test_delta_errors_lose_the_rust_backtrace_only():
    message = (
        "Kernel error: Json error: expected { got [1]\n   0: <unknown>\n   1: <unknown>\n  12: start_thread"
    )
    assert without_backtrace(RuntimeError(message)) == "Kernel error: Json error: expected { got [1]"
    assert without_backtrace(RuntimeError("one line\nand a second")) == "one line\nand a second"


def test_a_folder_given_as_the_report_file_is_named(tmp_path: Path):
    assert f"{tmp_path} is a folder; name the HTML file" in _fails_cleanly(
        "report", "latest", "-o", str(tmp_path)
    )


def test_a_master_spark_could_not_parse_is_a_usage_error_before_spark_starts():
    """`report --recompute --master bogus://` ended in a Java stack trace once the JVM had started."""
    assert "not a Spark master URL" in _fails_cleanly(
        "report", "latest", "--recompute", "--master", "bogus://"
    )
    for good in (
        "local",
        "local[*]",
        "local[4]",
        "local[2,3]",
        "local-cluster[2,1,1024]",
        "yarn",
        "spark://a:7077,b:7077",
        "k8s://https://k8s.example:6443",
        "mesos://zk://h:2181/mesos",
    ):
        assert check_master_url(good) == good
    for bad in ("local[0]", "local[x]", "spark://", "spark://host", "sparks://h:1", ""):
        with pytest.raises(ValueError, match="master"):
            check_master_url(bad)
    with pytest.raises(ValueError, match="not a Spark master URL"):
        get_spark(master="bogus://")


def test_runs_says_which_run_records_it_could_not_read(tmp_path: Path):
    (tmp_path / "_runs/broken-run").mkdir(parents=True)
    (tmp_path / "_runs/broken-run/run.json").write_text("{not json")
    result = runner.invoke(app, ["runs", "--lake", str(tmp_path)])
    assert result.exit_code == 0 and "1 run record(s) could not be read" in result.output
    assert "broken-run/run.json" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["quality", "train", "--data", "{data}", "-o", "{file}/m.bin"],
            "Invalid value for --out: cannot write",
        ),
        (
            ["tokenizer", "train", "--table", "d/t", "--output", "{file}/t.json", "--lake", "{tmp}"],
            "cannot write",
        ),
        (
            ["report", "latest", "-o", "{file}/r.html", "--lake", "{tmp}"],
            "Invalid value for -o: cannot write",
        ),
        (["quality", "eval", "--model", "{tmp}", "--data", "{data}"], "is a folder; name the file"),
    ],
)
def test_an_output_under_a_file_is_refused_before_any_work(tmp_path: Path, args: list[str], says: str):
    """Each used to run (train a model, compute a report) and end in a FileExistsError traceback."""
    plain = tmp_path / "afile"
    plain.write_text("a file, not a folder")
    data = Path(__file__).resolve().parents[2] / "samples/quality/dclm/majority_minus_agreement.jsonl"
    filled = [a.format(file=plain, data=data, tmp=tmp_path) for a in args]
    assert says in " ".join(_fails_cleanly(*filled).split())


def test_train_names_an_out_dir_it_cannot_make(tmp_path: Path):
    from training.trainer.cli import app as train_app

    plain = tmp_path / "afile"
    plain.write_text("a file")
    config = Path(__file__).resolve().parents[2] / "training/configs/demo_tiny.yaml"
    result = CliRunner(env={"COLUMNS": "400"}).invoke(train_app, [str(config), "--out", str(plain / "out")])
    assert result.exit_code == 2 and f"out_dir {plain / 'out'}: Not a directory" in result.output
