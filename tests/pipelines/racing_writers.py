"""Writers racing on one table, in separate processes: the check every lake location must pass.

Shared by the local, S3 and Azure lake tests so that one race, with one set of
assertions, guards every backend (a commit decided by rename, a conditional put
or a create-if-absent alike).
"""

from __future__ import annotations

import multiprocessing as mp
import os

import pyarrow as pa

from pipelines.framework.delta_commit import STAGING, TableConflictError
from pipelines.framework.lake import Lake

TABLE = "d/shared"


def _writer(root: str, worker: int, rounds: int, results) -> None:
    lake = Lake(root)
    for i in range(rounds):
        try:
            lake.write_arrow(pa.table({"w": [worker] * (i + 1)}), TABLE, {"stage": f"w{worker}"})
            results.append("ok")
        except TableConflictError:
            results.append("conflict")


def assert_racing_writers_commit_or_conflict(lake: Lake, root: str, writers: int, rounds: int) -> None:
    """Every attempt ends in one whole commit or one TableConflictError; every version holds one writer's
    rows; after orphan cleanup the stored files are exactly those some version references."""
    lake.write_arrow(pa.table({"w": [0]}), TABLE, {"stage": "init"})
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        results = manager.list()
        procs = [ctx.Process(target=_writer, args=(root, w, rounds, results)) for w in range(1, writers + 1)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)
        outcomes = list(results)
    assert len(outcomes) == writers * rounds and set(outcomes) <= {"ok", "conflict"}
    history = lake.history(TABLE)
    assert len(history) == 1 + outcomes.count("ok")
    for commit in history:
        table = lake.dataset(TABLE, int(commit["version"])).to_table()
        assert len(set(table.column("w").to_pylist())) == 1
    lake.clean_orphans(TABLE)
    referenced = set()
    for commit in history:
        referenced |= {os.path.basename(u) for u in lake.delta(TABLE, int(commit["version"])).file_uris()}
    assert {e.location.name for e in lake.path(TABLE).glob("*.parquet")} == referenced
    assert not (lake.path(TABLE) / STAGING).list()
