"""The runner: run records, resume by content, kill-and-rerun equality, spec errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.framework.lake import Lake
from pipelines.framework.runner import Runner
from pipelines.framework.runrecord import RunRecord, list_runs
from pipelines.framework.spec import SpecError, load_spec, parse_spec
from tests.cli_run import refinery

REPO = Path(__file__).resolve().parents[2]
LOAD = "tests.pipelines.stages_for_tests:LoadJsonl"
MARK = "tests.pipelines.stages_for_tests:MarkShort"


def _spec(tmp_path: Path, shared_data: Path, lake: Path, min_words: int = 400) -> Path:
    source = shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-cc-2023-06-refined.jsonl"
    spec = {
        "name": "runner-test",
        "lake": str(lake),
        "spark": {"master": "local[2]"},
        "stages": [
            {"stage": LOAD, "params": {"path": str(source)}},
            {"stage": MARK, "params": {"min_words": min_words}},
        ],
    }
    path = tmp_path / f"spec-{lake.name}-{min_words}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run(path: Path, spark) -> RunRecord:
    spec, stages = load_spec(path)
    return Runner(spec, stages, spec_path=str(path), spark=spark, progress=False).run()


def test_run_records_counts_and_resumes(spark, tmp_path, shared_data):
    lake_dir = tmp_path / "lake"
    path = _spec(tmp_path, shared_data, lake_dir)
    first = _run(path, spark)
    assert first.status == "succeeded"
    mark = first.stage(MARK)
    assert mark.status == "succeeded" and mark.reconciled is True
    assert mark.rows_in == mark.kept + sum(mark.dropped.values())
    assert (lake_dir / "_runs" / first.run_id / "stats.json").is_file()

    second = _run(path, spark)
    assert [s.status for s in second.stages] == ["skipped", "skipped"]
    assert second.stage(MARK).outputs == mark.outputs
    assert Lake(lake_dir).version("runner-test/marked") == 0

    changed = _run(_spec(tmp_path, shared_data, lake_dir, min_words=1000), spark)
    assert [s.status for s in changed.stages] == ["skipped", "succeeded"]
    assert changed.stage(MARK).dropped["too_short"] > mark.dropped.get("too_short", 0)
    assert {r.run_id for r in list_runs(lake_dir)} == {first.run_id, second.run_id, changed.run_id}


def _run_killed_at(fault: str, tmp_path: Path, shared_data: Path) -> tuple[Path, Path, Path]:
    """Run the test job in a CLI process that SIGKILLs itself at `fault`; (spec, its lake, a clean lake)."""
    killed_lake, clean_lake = tmp_path / "killed", tmp_path / "clean"
    spec_path = _spec(tmp_path, shared_data, killed_lake)
    proc = refinery("run", str(spec_path), "--quiet", env={"REFINERY_FAULT": fault}, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    return spec_path, killed_lake, clean_lake


def test_killed_run_resumes_to_identical_tables(spark, tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("REFINERY_CODE_VERSION", "pinned-for-this-test")
    spec_path, killed_lake, clean_lake = _run_killed_at(
        "before_commit:runner-test/marked", tmp_path, shared_data
    )
    killed = list_runs(killed_lake)
    assert len(killed) == 1 and killed[0].status == "running"  # heartbeat not yet stale
    assert not Lake(killed_lake).exists("runner-test/marked")

    resumed = _run(spec_path, spark)
    assert [s.status for s in resumed.stages] == ["skipped", "succeeded"]
    _run(_spec(tmp_path, shared_data, clean_lake), spark)
    a = Lake(killed_lake).read(spark, "runner-test/marked").orderBy("doc_id").collect()
    b = Lake(clean_lake).read(spark, "runner-test/marked").orderBy("doc_id").collect()
    assert a == b
    assert not list((killed_lake / "runner-test" / "marked").glob("_staging/*"))


def test_run_killed_after_commit_before_run_json_resumes(spark, tmp_path, shared_data, monkeypatch):
    """SIGKILL right after the marked table's commit: run.json still says the stage is running."""
    monkeypatch.setenv("REFINERY_CODE_VERSION", "pinned-for-this-test")
    spec_path, killed_lake, clean_lake = _run_killed_at(
        "after_commit:runner-test/marked", tmp_path, shared_data
    )
    (killed,) = list_runs(killed_lake)
    assert [s.status for s in killed.stages] == ["succeeded", "running"]
    assert Lake(killed_lake).version("runner-test/marked") == 0  # the commit landed

    resumed = _run(spec_path, spark)
    assert resumed.status == "succeeded"
    assert [s.status for s in resumed.stages] == ["skipped", "skipped"]
    mark = resumed.stage(MARK)
    assert mark.outputs == {"marked": 0} and mark.reconciled is True
    assert Lake(killed_lake).version("runner-test/marked") == 0  # no second commit
    clean = _run(_spec(tmp_path, shared_data, clean_lake), spark).stage(MARK)
    assert (mark.rows_in, mark.kept, mark.dropped) == (clean.rows_in, clean.kept, clean.dropped)
    a = Lake(killed_lake).read(spark, "runner-test/marked").orderBy("doc_id").collect()
    b = Lake(clean_lake).read(spark, "runner-test/marked").orderBy("doc_id").collect()
    assert a == b


def test_stale_heartbeat_is_reported_interrupted(tmp_path):
    record = RunRecord(
        run_id="r-stale",
        job="j",
        dataset="j",
        lake=str(tmp_path),
        status="running",
        heartbeat_at="2020-01-01T00:00:00+00:00",
        pid=2**22 + 17,
        host="elsewhere",
    )
    record.save()
    assert RunRecord.load(tmp_path, "r-stale").status == "interrupted"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "stages": [{"stage": "nope"}]}, "stages[0].stage: unknown stage 'nope'"),
        (
            {"name": "x", "stages": [{"stage": MARK, "params": {"min_words": "many"}}]},
            "stages[0] (t_mark).params.min_words",
        ),
        (
            {"name": "x", "stages": [{"stage": MARK, "params": {"min_wrods": 3}}]},
            "stages[0] (t_mark).params.min_wrods: Extra inputs are not permitted",
        ),
        ({"name": "x", "stages": [], "spark": {"mastr": "local"}}, "spark.mastr"),
        ({"stages": []}, "name: Field required"),
        ({"name": "x", "stages": [{"stage": MARK}, {"stage": MARK}]}, "duplicate stage id"),
        ({"name": "j" * 101, "stages": []}, "name: Value error, at most 100 bytes"),
    ],
)
def test_spec_errors_name_the_field(data, message):
    with pytest.raises(SpecError) as info:
        parse_spec(data, "job.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("job.yaml: ")


def test_a_misnamed_input_of_a_later_stage_fails_before_the_first_stage_runs(spark, tmp_path, shared_data):
    """The last stage reading `markd` used to fail only once every stage before it had run (hours, on a
    crawl); now the run fails at once, names the stage and the table, and has written nothing."""
    lake_dir = tmp_path / "lake"
    path = _spec(tmp_path, shared_data, lake_dir)
    spec = yaml.safe_load(path.read_text())
    spec["stages"].append({"stage": MARK, "id": "again", "params": {"input": "markd", "output": "again"}})
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(FileNotFoundError, match="stage 'again': its input table runner-test/markd") as caught:
        _run(path, spark)
    assert "did you mean 'marked'?" in str(caught.value)
    (record,) = list_runs(lake_dir)
    assert record.status == "failed" and "markd" in record.error
    assert [s.status for s in record.stages] == ["pending"] * 3
    assert Lake(lake_dir).version("runner-test/documents") is None  # the first stage never ran


def _ingest_spec(folder: Path, lake: str, pattern: str) -> Path:
    spec = {
        "name": "preflight",
        "lake": lake,
        "stages": [
            {"stage": "ingest", "params": {"inputs": [{"name": "web", "path": pattern, "format": "warc"}]}}
        ],
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_input_matching_nothing_fails_before_spark_on_the_stage_naming_the_folder(tmp_path):
    """Relative input paths are read from the folder refinery runs in; a newcomer running a spec from
    another folder used to wait for the JVM, then read a message without the folder, and `show` then
    printed the stage as running for ever."""
    _ingest_spec(tmp_path, "lake", "data/*.warc.gz")
    result = refinery("run", "job.yaml", "--quiet", cwd=tmp_path, unset=["REFINERY_LAKE"])
    assert result.returncode == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert "'data/*.warc.gz' (relative to the folder refinery runs in," in message
    assert str(tmp_path) in message.replace(" ", "")
    (record,) = list_runs(tmp_path / "lake")
    assert record.status == "failed" and record.app_id is None  # Spark was never started
    (stage,) = record.stages
    assert stage.status == "failed" and "holds no file to read" in stage.error


@pytest.mark.parametrize("where", ["under_a_file", "in_proc"])
def test_a_lake_that_cannot_be_a_folder_is_named_before_anything_is_recorded(tmp_path, where):
    """Both used to end in a bare OSError and a pointer to a run record that could not exist."""
    if where == "under_a_file":
        (tmp_path / "plain").write_text("not a folder")
        lake, reason = tmp_path / "plain" / "lake", "Not a directory"
    else:  # no folder can be made in /proc, not even by root
        lake, reason = Path("/proc/refinery-no-lake/lake"), "No such file or directory"
    _ingest_spec(tmp_path, str(lake), "data/*.warc.gz")
    result = refinery("run", "job.yaml", "--quiet", cwd=tmp_path, unset=["REFINERY_LAKE"])
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert f"cannot use {lake} as the lake: {reason}" in message and "Traceback" not in result.stderr
    assert "_runs folder" not in message  # no run record exists to look at
