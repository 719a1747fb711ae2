"""Concurrent commits to one table: each writer commits or gets TableConflictError; the table stays sound.

Writers are released together by a barrier so their delta-rs commits race for the
same version. This is the commit path every stage's output goes through, so it is
what two jobs writing one table at once exercise (the cluster test does it end to end).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.lake import Lake, TableConflictError

WRITERS = 6


def _race(lake: Lake, table: str, mode: str) -> dict[int, object]:
    barrier = threading.Barrier(WRITERS)
    outcomes: dict[int, object] = {}

    def write(writer: int) -> None:
        data = pa.table({"writer": [writer] * (writer + 1), "row": list(range(writer + 1))})
        barrier.wait()
        try:
            outcomes[writer] = lake.write_arrow(data, table, {"writer": writer}, mode=mode)
        except TableConflictError as exc:
            outcomes[writer] = exc

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _assert_sound(lake: Lake, table: str) -> None:
    referenced: set[str] = set()
    for version in range(lake.version(table) + 1):
        assert lake.dataset(table, version).to_table().num_rows == lake.num_records(table, version)
        referenced |= {Path(u).name for u in lake.delta(table, version).file_uris()}
    assert {p.name for p in lake.path(table).glob("*.parquet")} <= referenced
    assert not list((lake.path(table) / "_staging").glob("*/*.parquet"))


@pytest.mark.parametrize("mode", ["overwrite", "append"])
def test_racing_writers_commit_or_conflict(tmp_path, mode):
    """First race: writers create the table together; second race: they commit on top of it."""
    lake = Lake(tmp_path / "lake")
    table = "race/docs"
    appended: list[tuple[int, int]] = []
    total = 0
    for _ in range(2):
        outcomes = _race(lake, table, mode)
        assert len(outcomes) == WRITERS
        committed = [w for w, r in outcomes.items() if not isinstance(r, TableConflictError)]
        conflicts = [r for r in outcomes.values() if isinstance(r, TableConflictError)]
        assert all("nothing was committed" in str(c) for c in conflicts)
        assert committed, "no writer committed"
        total += len(committed)
        history = lake.history(table)
        assert sorted(int(c["version"]) for c in history) == list(range(total))  # one per commit, no gaps
        _assert_sound(lake, table)
        rows = lake.dataset(table).to_table().to_pylist()
        if mode == "overwrite":
            last = int(history[0]["meta"]["writer"])
            assert sorted((r["writer"], r["row"]) for r in rows) == [(last, i) for i in range(last + 1)]
        else:
            appended += [(w, i) for w in committed for i in range(w + 1)]
            assert sorted((r["writer"], r["row"]) for r in rows) == sorted(appended)


def test_each_writer_learns_its_own_version(tmp_path):
    lake = Lake(tmp_path / "lake")
    _race(lake, "race/docs", "append")
    outcomes = _race(lake, "race/docs", "append")
    for writer, result in outcomes.items():
        if not isinstance(result, TableConflictError):
            assert result.version == lake.find_commit("race/docs", {"writer": str(writer)})
