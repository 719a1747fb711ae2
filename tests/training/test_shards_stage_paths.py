"""Where the shards stage writes, and what it reads, checked before it works.

An `output_dir` under a plain file used to fail only when the finished stage's manifest was read
("cannot read .../plainfile/x/manifest.json: Not a directory"), after every stage before it had
run; `/proc/shards` with a bare FileNotFoundError. Now one line names `output_dir` first.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from deltalake import write_deltalake

from pipelines.framework.runrecord import list_runs
from tests.cli_run import refinery
from training.shards.config import ShardsConfig
from training.shards.stage import Shards


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plainfile").write_text("not a folder")
    return tmp_path / "plainfile" / "x"


def test_an_output_dir_under_a_file_fails_the_run_before_spark_starts(tmp_path: Path) -> None:
    spec = {
        "name": "paths",
        "lake": str(tmp_path / "lake"),
        "stages": [
            {"stage": "shards", "params": {"input": "augmented", "output_dir": str(_under_a_file(tmp_path))}}
        ],
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    result = refinery("run", "job.yaml", "--quiet", cwd=tmp_path, unset=["REFINERY_LAKE"])
    assert result.returncode == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert "output_dir: cannot write the shard folder" in message and "Not a directory" in message
    (record,) = list_runs(tmp_path / "lake")
    assert record.status == "failed" and record.app_id is None  # Spark was never started
    (stage,) = record.stages
    assert stage.status == "failed" and stage.error.startswith("ValueError: output_dir: ")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc on this system")
def test_an_output_dir_in_proc_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^output_dir: cannot write the shard folder /proc/shards \("):
        Shards(ShardsConfig(output_dir="/proc/shards")).preflight()


def test_a_writable_output_dir_passes_the_preflight(tmp_path: Path) -> None:
    Shards(ShardsConfig(output_dir=str(tmp_path / "sets" / "a"))).preflight()
    assert (tmp_path / "sets" / "a").is_dir()


def test_an_output_dir_under_the_lake_is_checked_when_the_stage_starts(stage_ctx, lake) -> None:
    """Relative to the lake, known only at run time: refused before the manifest is looked for."""
    Path(lake.root.url).mkdir(parents=True)
    (Path(lake.root.url) / "plainfile").write_text("not a folder")
    stage = Shards(ShardsConfig(input="augmented", output_dir="plainfile/x"))
    with pytest.raises(ValueError, match=r"^output_dir: .*plainfile/x \(Not a directory\)"):
        stage.is_complete(stage_ctx, {"resume_key": "k"})
    with pytest.raises(ValueError, match=r"^output_dir: "):
        stage.run(stage_ctx)


def test_a_missing_text_column_is_named_with_its_field(stage_ctx, lake) -> None:
    write_deltalake(lake.path("test/augmented").url, pa.table({"doc_id": ["a"], "body": ["some text"]}))
    stage = Shards(ShardsConfig(input="augmented", text_column="text"))
    with pytest.raises(ValueError, match=r"^text_column: table 'augmented' has no 'text' column"):
        stage.run(stage_ctx)
