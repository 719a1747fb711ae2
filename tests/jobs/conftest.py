"""Fixtures for control-plane tests: a real standalone cluster, job specs over real data, table comparison.

The job submitted to the cluster is built from the runner's test stages by import
path, so it does not depend on the curation stages. Set REFINERY_CLUSTER_SPEC to a
job spec YAML (e.g. jobs/examples/demo.yaml) to submit that job instead: its `lake`
is replaced per test, everything else is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.cluster import LocalCluster
from jobs.registry import TERMINAL, refresh
from jobs.submit import SubmitOptions
from pipelines.framework.lake import Lake
from pipelines.framework.runrecord import RunRecord

LOAD = "tests.pipelines.stages_for_tests:LoadJsonl"
MARK = "tests.pipelines.stages_for_tests:MarkShort"
SLEEP = "tests.jobs.stages_for_cluster:SleepPass"
SOURCE = Path("web/datajuicer_pretrain_source_samples/redpajama-cc-2023-06-refined.jsonl")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One master and two 1-core workers; stopped by pid in the finalizer whatever the tests did."""
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), workers=2, worker_cores=1, worker_memory="1g")
    try:
        local.start(timeout=300)
        yield local
    finally:
        local.stop()


@pytest.fixture()
def options(cluster) -> Callable[..., SubmitOptions]:
    """Small submissions: one core and 512 MB per application, two shuffle partitions."""

    def make(**overrides: Any) -> SubmitOptions:
        fields = {
            "master": cluster.url,
            "master_ui": cluster.web_url,
            "driver_memory": "512m",
            "executor_memory": "512m",
            "total_executor_cores": 1,
            "conf": {"spark.sql.shuffle.partitions": "2"},
            **overrides,
        }
        return SubmitOptions(**fields)

    return make


@pytest.fixture(scope="module")
def job_spec(shared_data, tmp_path_factory) -> Callable[..., Path]:
    """Write a spec for `lake`; `sleep` appends a slow stage (seconds per task, task markers in `markers`)."""
    folder = tmp_path_factory.mktemp("specs")

    def make(
        lake: Path, sleep: float | None = None, name: str = "cluster-test", markers: Path | None = None
    ) -> Path:
        custom = os.environ.get("REFINERY_CLUSTER_SPEC")
        if custom:
            data = yaml.safe_load(Path(custom).read_text())
        else:
            data = {
                "name": name,
                "stages": [
                    {"stage": LOAD, "params": {"path": str(shared_data / SOURCE)}},
                    {"stage": MARK, "params": {"min_words": 400}},
                ],
            }
        data["lake"] = str(lake)
        if sleep is not None:
            last = data["stages"][-1]
            data["stages"].append(
                {
                    "stage": SLEEP,
                    "params": {
                        "input": _last_output(last),
                        "seconds": sleep,
                        "marker_dir": str(markers) if markers else None,
                    },
                    "id": "sleep",
                }
            )
        path = folder / f"{data['name']}-{lake.name}-{sleep}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


def _last_output(stage_entry: dict[str, Any]) -> str:
    """The table the spec's last stage writes (the slow stage reads it)."""
    from pipelines.framework.spec import parse_spec

    _, stages = parse_spec({"name": "probe", "stages": [stage_entry]})
    return stages[0][1].output_tables()[0]


def wait_for(
    lake: Path, run_id: str, condition: Callable[[RunRecord], bool], timeout: float = 900
) -> RunRecord:
    """Poll a run's record until `condition` holds (or it ends); generous: CI machines are shared."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            record = refresh(lake, run_id)
        except FileNotFoundError:
            record = None
        if record is not None and (condition(record) or record.status in TERMINAL):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not get there in {timeout} s: {record}")
        time.sleep(1.0)


def table_rows(lake: Path, table: str) -> list[str]:
    """A table's rows as sorted JSON-ish strings: order-free equality of two lakes' tables."""
    rows = Lake(lake).dataset(table).to_table().to_pylist()
    return sorted(repr(sorted(row.items())) for row in rows)


def assert_same_tables(expected_lake: Path, actual_lake: Path, dataset: str) -> None:
    expected = [t for t in Lake(expected_lake).tables() if t.startswith(f"{dataset}/")]
    assert expected, f"the reference run wrote no table under {dataset}/"
    for table in expected:
        assert table_rows(actual_lake, table) == table_rows(expected_lake, table), table
